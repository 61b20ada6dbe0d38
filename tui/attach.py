"""Drive a run that lives in another process: commands over its control socket, events from its log."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from ptviz.engine.commands import Command, Stop
from ptviz.engine.events import TERMINAL

from .messages import EngineEvent, LogRequested

POLL_SECONDS = 0.25


class RemoteController:
    """The attached cockpit's stand-in for RunController: same questions, answered through the run dir."""

    remote_run = True
    sink = None  # events come from the run's log, posted as they are read, not queued for frames

    def __init__(self, app: App, run_dir: Path):
        from ptviz.engine.remote import LogFollower, RemoteRun

        self.app = app
        self.run_dir = run_dir
        self.remote = RemoteRun(run_dir)
        self.follower = LogFollower(run_dir)
        self.ended = False

    @property
    def active(self) -> bool:
        """Whether the remote run is still going (as far as its log says)."""
        return not self.ended

    def follow(self) -> None:
        """Read the whole log so far, then keep polling it."""
        self.app.set_interval(POLL_SECONDS, self._poll)
        self._poll()

    def _poll(self) -> None:
        if not self.ended:
            self.app.run_worker(self._read, thread=True, exclusive=True, group="attach-log", exit_on_error=False)

    def _read(self) -> None:
        for event in self.follower.poll():
            if isinstance(event, TERMINAL):
                self.ended = True
            self.app.post_message(EngineEvent(event))

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
