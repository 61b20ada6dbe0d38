"""Drive a run that lives in another process: commands over its control socket, events from its log."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from ptviz.engine.commands import Command, Stop
from ptviz.engine.events import TERMINAL

from .messages import EngineEvent, HistoryLoaded, LogRequested
from .train.charts import HISTORY_BUCKETS

POLL_SECONDS = 0.25


class RemoteController:
    """The attached cockpit's stand-in for RunController: same questions, answered through the run dir."""

    remote_run = True
    sink = None  # events come from the run's log, posted as they are read, not queued for frames

    def __init__(self, app: App, run_dir: Path):
        from ptviz.engine.remote import RemoteRun

        self.app = app
        self.run_dir = run_dir
        self.remote = RemoteRun(run_dir)
        self.follower = None  # set once the history is on screen; polls the log from where the history ended
        self.reading = False  # a poll is under way on a worker thread
        self.ended = False

    @property
    def active(self) -> bool:
        """Whether the remote run is still going (as far as its log says)."""
        return not self.ended

    def follow(self) -> None:
        """Read the history so far (reduced to chart width, on a worker), then keep polling the log."""
        self.app.set_interval(POLL_SECONDS, self._poll)
        self._load()

    def _load(self) -> None:
        self.app.run_worker(self._read_history, thread=True, group="attach-history", exit_on_error=False)

    def _read_history(self) -> None:
        from ptviz.engine.storage import history

        try:
            snapshot = history.load(self.run_dir, buckets=HISTORY_BUCKETS)
        except (OSError, ValueError) as exc:
            self.app.post_message(LogRequested(f"cannot read the run's log: {exc}", "red"))
            return
        self.app.post_message(HistoryLoaded(snapshot, history.Follower(self.run_dir, snapshot.end)))

    def took_history(self, follower) -> None:
        """The history is on screen: poll the log from where it ended (UI thread)."""
        self.follower = follower

    def _poll(self) -> None:
        follower = self.follower
        if self.ended or follower is None or self.reading:
            return
        if follower.cut_back:  # the log was cut back under us (the run was resumed): read it again
            self.follower = None
            self._load()
            return
        self.reading = True
        self.app.run_worker(lambda: self._read(follower), thread=True, group="attach-log", exit_on_error=False)

    def _read(self, follower) -> None:
        try:
            for event in follower.poll():
                if isinstance(event, TERMINAL):
                    self.ended = True
                self.app.post_message(EngineEvent(event))
        finally:
            self.reading = False

    def send(self, command: Command) -> bool:
        """Send a command on a thread (the socket may take a moment); False once the run has ended."""
        if self.ended:
            return False
        self.app.run_worker(lambda: self._send(command), thread=True, group="attach-send", exit_on_error=False)
        return True

    def _send(self, command: Command) -> None:
        from ptviz.engine.remote import RemoteError

        try:
            self.remote.send(command)
        except RemoteError as exc:
            self.app.post_message(LogRequested(str(exc), "red"))

    def stop_soon(self) -> None:
        """Ask the remote run to stop (it saves a checkpoint)."""
        self.send(Stop())

    def detach(self) -> None:
        """Close the connection; the run carries on untouched."""
        self.remote.close()
