"""Run the blocking training loop on a worker thread and hand its events to asyncio, never blocking it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .commands import Command, Control
from .config import RunConfig
from .events import TERMINAL, Event, RunFailed
from .loop import OnDivergence, train
from .sinks import EventSink, FanOut


class AsyncioSink:
    """Puts events into an asyncio.Queue from any thread with call_soon_threadsafe (never waits)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Event]):
        self.loop = loop
        self.queue = queue

    def emit(self, event: Event) -> None:
        """Schedule the put on the event loop; drop the event if that loop has closed."""
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except RuntimeError:
            pass  # the consumer's loop is gone (app quit); the run carries on or is stopping


class TrainingSession:
    """One training run on a daemon thread, driven by commands and read as an async event stream."""

    def __init__(self, config: RunConfig, *, resume: dict[str, Any] | None = None,
                 run_dir: Path | None = None, extra_sink: EventSink | None = None,
                 on_divergence: OnDivergence = "pause"):
        self.config = config
        self.control = Control()
        self.resume = resume
        self.run_dir = run_dir
        self.on_divergence = on_divergence  # a UI is watching: pause so the user can decide
        self.extra_sink = extra_sink
        self.queue: asyncio.Queue[Event] | None = None
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        """Start training; call from a running event loop, which receives the events."""
        loop = asyncio.get_running_loop()
        self.queue = asyncio.Queue()
        sink = FanOut(self.extra_sink, AsyncioSink(loop, self.queue)) if self.extra_sink else AsyncioSink(loop, self.queue)
        self.thread = threading.Thread(target=self._run, args=(sink,), name="ptviz-train", daemon=True)
        self.thread.start()

    def _run(self, sink: EventSink) -> None:
        try:
            train(self.config, sink, self.control, resume=self.resume, run_dir=self.run_dir,
                  on_divergence=self.on_divergence)
        except BaseException as exc:  # noqa: BLE001 - already reported to the sink as RunFailed
            self.error = exc

    def send(self, command: Command) -> None:
        """Queue a command for the next step boundary."""
        self.control.send(command)

    async def events(self) -> AsyncIterator[Event]:
        """Every event until (and including) RunFinished or RunFailed."""
        assert self.queue is not None, "start() first"
        while True:
            event = await self.queue.get()
            yield event
            if isinstance(event, TERMINAL):
                return

    async def next_event(self, kind: type | tuple[type, ...], timeout: float = 60.0) -> Any:
        """The next event of `kind` (others are skipped); a RunFailed raises instead."""
        assert self.queue is not None, "start() first"

        async def wait() -> Event:
            while True:
                event = await self.queue.get()  # type: ignore[union-attr]
                if isinstance(event, kind):
                    return event
                if isinstance(event, RunFailed):
                    raise RuntimeError(f"run failed: {event.message}\n{event.traceback}")

        return await asyncio.wait_for(wait(), timeout)

    @property
    def alive(self) -> bool:
        """Whether the training thread is still running."""
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Ask the run to stop and wait for the thread; True when it has ended."""
        self.control.stop()
        if self.thread is not None:
            self.thread.join(timeout)
        return not self.alive
