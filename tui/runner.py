"""The cockpit's thin wrapper around the engine: train on a thread worker, hand events over by message."""

from __future__ import annotations

import threading
from collections import deque
from functools import partial
from pathlib import Path
from typing import Any

from textual.app import App
from textual.worker import Worker

from ptviz.engine.commands import Command, Control
from ptviz.engine.config import RunConfig
from ptviz.engine.events import EpochEnded, Evaluated, LayerStats, StepMetrics

from .messages import EngineEventsWaiting

TRAINING_GROUP = "training"
TRAINING_THREAD = "ptviz-train"


# Events the app takes with its next frame instead of being woken for: the stream of metrics, layer health
# included (sampled every 50 steps, several times a second on a small model).
ROUTINE = (StepMetrics, EpochEnded, Evaluated, LayerStats)


class PostMessageSink:
    """Engine sink that queues events for the app; never blocks.

    Metrics wait in the queue for the app's next frame (`take`), so the UI thread wakes for a frame rather
    than for every batch of points: on a CPU, each wake-up of the UI stalls torch's threads, which wait for
    one another. Any other event (a pause, the end, a failure) posts a message at once, and its handler
    takes everything queued before it, in order.
    """

    def __init__(self, app: App):
        self.app = app
        self._queue: deque[Any] = deque()
        self._posted = False  # a message is on its way and will take everything queued before it is handled

    def emit(self, event: Any) -> None:
        """Queue the event; for all but metrics, post a message unless one is on its way (training thread)."""
        self._queue.append(event)
        if not self._posted and not isinstance(event, ROUTINE):
            self._posted = True
            self.app.post_message(EngineEventsWaiting(self))

    def take(self) -> list[Any]:
        """Every event queued so far, oldest first (runs on the UI thread)."""
        self._posted = False  # set before taking: an event queued from here on posts a new message
        events = []
        while self._queue:
            events.append(self._queue.popleft())
        return events


class RunController:
    """Owns the current run's worker and command channel; the app asks it to start and command."""

    remote_run = False

    def __init__(self, app: App):
        self.app = app
        self.control: Control | None = None
        self.sink: PostMessageSink | None = None  # the current run's event queue
        self.worker: Worker | None = None
        self.finished = threading.Event()  # set when the engine's train() has returned on its thread

    @property
    def active(self) -> bool:
        """Whether a training thread is running now.

        The thread's own flag, not the worker's state: closing the app cancels its workers, and a cancelled
        worker reads as finished while its thread still trains (and must still be told to stop).
        """
        return self.worker is not None and not self.finished.is_set()

    def start(self, config: RunConfig, *, resume: dict | None = None, run_dir: Path | None = None,
              task: Any = None, parent: Any = None) -> Worker:
        """Start training `config` (or the Task `task`) on a thread worker (the engine's blocking train function);
        `parent` for a fork."""
        self.control = Control()
        self.finished = threading.Event()
        self.sink = PostMessageSink(self.app)
        # A NaN pauses the cockpit's run (the user decides), where headless stops it.
        job = partial(self._train, config, self.sink, self.control, dict(resume=resume, run_dir=run_dir,
                                                                         on_divergence="pause", task=task,
                                                                         parent=parent))
        self.worker = self.app.run_worker(job, name="training", group=TRAINING_GROUP, description="training",
                                          thread=True, exclusive=True, exit_on_error=False)
        return self.worker

    def _train(self, config: RunConfig, sink: PostMessageSink, control: Control, options: dict[str, Any]) -> None:
        """Run the engine on this worker thread, named so it can be told apart from idle pool threads."""
        thread = threading.current_thread()
        pool_name, thread.name = thread.name, TRAINING_THREAD
        try:
            from ptviz.engine.loop import train  # torch: loaded here, not on the UI thread, if not loaded yet

            train(config, sink, control, **options)
        finally:
            thread.name = pool_name
            self.finished.set()

    def send(self, command: Command) -> bool:
        """Send a command to the running loop; False when nothing is running."""
        if not self.active or self.control is None:
            return False
        self.control.send(command)
        return True

    def stop_soon(self) -> None:
        """Ask the run to stop at the next step boundary (it saves a checkpoint)."""
        if self.active and self.control is not None:
            self.control.stop()

    def request_checkpoint_and_stop(self, reason: str) -> None:
        """From a signal handler: only sets flags; the loop checkpoints and ends within one step."""
        if self.control is not None:
            self.control.request_checkpoint_and_stop(reason)

    def join(self, timeout: float) -> bool:
        """After the UI has gone: stop the run and wait for its thread; True when it ended in time."""
        if self.worker is None:
            return True
        self.stop_soon()
        return self.finished.wait(timeout)

    async def stop(self, timeout: float = 30.0) -> bool:
        """Stop the run and wait for its thread to end; True when it has."""
        if self.worker is None:
            return True
        if self.control is not None:
            self.control.stop()
        import asyncio

        try:
            await asyncio.wait_for(self.worker.wait(), timeout)
        except Exception:  # noqa: BLE001 - WorkerFailed or a timeout: the state below tells
            pass
        return self.worker.is_finished
