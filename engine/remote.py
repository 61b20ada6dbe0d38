"""Drive and watch a run from another process: a control socket in the run's owner-only folder, and its log.

The training process serves `RUN_DIR/control/sock` (a Unix domain socket in a 0700 folder, so only its
owner can connect; on Linux the peer's uid is checked too). Each request is one JSON line, each answer
one JSON line:

    {"cmd": "pause"} {"cmd": "resume"} {"cmd": "stop"} {"cmd": "checkpoint"} {"cmd": "evaluate"}
    {"cmd": "set_lr", "lr": 0.01} {"cmd": "scale_lr", "factor": 0.5} {"cmd": "status"}
    {"cmd": "wait", "step": 100} {"cmd": "wait", "paused": true}      (answer once true, or on timeout)
    -> {"ok": true, "status": {"step": 120, "epoch": 3, "paused": false, "state": "running", ...}}
    -> {"ok": false, "error": "..."}

Any number of clients may be connected; a client coming or going never touches the run. Watching needs
no socket at all: `ptviz.engine.storage.history` reads the log (load() the history so far, reduced, then a
Follower for what comes next).
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import sys
import threading
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .commands import (
    Command,
    Control,
    EvaluateNow,
    Pause,
    Resume,
    SaveCheckpoint,
    ScaleLearningRate,
    SetLearningRate,
    Stop,
)
from .errors import UserError
from .events import (
    CheckpointSaved,
    Diverged,
    EpochEnded,
    Event,
    Evaluated,
    LrChanged,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from .storage.history import Follower
from .storage.rundir import CONTROL_DIR, control_dir
from .storage.runlog import METRICS_JSONL

SOCKET_NAME = "sock"
MAX_REQUEST = 64 * 1024
POLL_SECONDS = 0.2  # how often server threads look at the closing flag
MAX_PATH = 100  # AF_UNIX paths are limited to 104-108 bytes depending on the system
CONTROL_SOCKETS = hasattr(socket, "AF_UNIX")  # not on Windows: runs there cannot be attached to


class RemoteError(UserError):
    """The run cannot be reached, or refused a request."""


# ----------------------------------------------------------------------------- commands as JSON

_SIMPLE: dict[str, type] = {"pause": Pause, "resume": Resume, "stop": Stop, "evaluate": EvaluateNow}


def command_to_json(command: Command) -> dict[str, Any]:
    """The request that sends `command`."""
    if isinstance(command, SetLearningRate):
        return {"cmd": "set_lr", "lr": command.lr}
    if isinstance(command, ScaleLearningRate):
        return {"cmd": "scale_lr", "factor": command.factor}
    if isinstance(command, SaveCheckpoint):
        return {"cmd": "checkpoint"}
    for name, cls in _SIMPLE.items():
        if isinstance(command, cls):
            return {"cmd": name}
    raise TypeError(f"not a command: {command!r}")


def command_from_json(request: dict[str, Any]) -> Command:
    """The engine command of a request; ValueError says what is wrong with it."""
    name = request.get("cmd")
    if name in _SIMPLE:
        return _SIMPLE[name]()
    if name == "checkpoint":
        return SaveCheckpoint("manual")
    if name in ("set_lr", "scale_lr"):
        key = "lr" if name == "set_lr" else "factor"
        value = request.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} needs a number in {key!r}")
        if not (math.isfinite(value) and value > 0):
            what = "learning rate" if name == "set_lr" else "factor"
            raise ValueError(f"the {what} must be a positive number, got {value!r}")
        return SetLearningRate(float(value)) if name == "set_lr" else ScaleLearningRate(float(value))
    raise ValueError(f"unknown command {name!r}; known: {', '.join([*_SIMPLE, 'checkpoint', 'set_lr', 'scale_lr', 'status', 'wait'])}")


# ----------------------------------------------------------------------------- socket address


@contextmanager
def _socket_path(folder: Path) -> Iterator[str]:
    """A path for the socket in `folder` short enough for AF_UNIX (through /proc/self/fd on Linux)."""
    path = str(folder / SOCKET_NAME)
    if len(path.encode()) <= MAX_PATH:
        yield path
        return
    if not sys.platform.startswith("linux"):
        raise RemoteError(f"{folder}: path too long for a control socket; use a shorter runs folder")
    fd = os.open(folder, os.O_RDONLY)
    try:
        yield f"/proc/self/fd/{fd}/{SOCKET_NAME}"
    finally:
        os.close(fd)


def _peer_uid(conn: socket.socket) -> int | None:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


# ----------------------------------------------------------------------------- server (in the training process)


class ControlServer:
    """EventSink that serves the control socket: it keeps the run's status from events and queues commands."""

    def __init__(self, run_dir: Path, control: Control):
        self.run_dir = Path(run_dir)
        self.control = control
        self.folder = control_dir(self.run_dir)
        self.cond = threading.Condition()
        self.status: dict[str, Any] = {"state": "starting", "step": 0, "epoch": 0, "paused": False,
                                       "pid": os.getpid(), "run_dir": str(self.run_dir)}
        self.closing = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        (self.folder / SOCKET_NAME).unlink(missing_ok=True)  # left by a killed run; we hold the run lock
        with _socket_path(self.folder) as path:
            self.sock.bind(path)
            os.chmod(path, 0o600)
        self.sock.listen(16)
        self.sock.settimeout(POLL_SECONDS)
        self.thread = threading.Thread(target=self._accept, name="ptviz-control", daemon=True)
        self.thread.start()

    # The training thread calls emit: it only updates a dict under a lock that no client holds for long.
    def emit(self, event: Event) -> None:
        """Track the run's position and state from its events."""
        update: dict[str, Any] = {}
        if isinstance(event, RunStarted):
            update = {"state": "running", "step": event.start_step, "epoch": event.start_epoch + 1,
                      "total_steps": event.total_steps, "epochs": event.epochs}
        elif isinstance(event, StepMetrics):
            update = {"step": event.last_step, "epoch": event.epoch, "lr": event.lrs[-1], "loss": event.losses[-1]}
        elif isinstance(event, Paused):
            update = {"paused": True, "state": "paused", "step": event.step}
        elif isinstance(event, Resumed):
            update = {"paused": False, "state": "running", "step": event.step}
        elif isinstance(event, LrChanged):
            update = {"lr": event.lr, "lr_changes": self.status.get("lr_changes", 0) + 1}
        elif isinstance(event, (Evaluated, EpochEnded)):
            update = {"step": event.step}
        elif isinstance(event, CheckpointSaved):
            update = {"last_checkpoint": event.path, "checkpoint_step": event.step}
        elif isinstance(event, Diverged):
            update = {"diverged_at": event.step}
        elif isinstance(event, RunFinished):
            update = {"state": event.state, "paused": False, "step": event.step}
        elif isinstance(event, RunFailed):
            update = {"state": "failed", "paused": False}
        if update:
            with self.cond:
                self.status.update(update)
                self.cond.notify_all()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            uid = _peer_uid(conn)
            if uid is not None and uid != os.getuid():  # SO_PEERCRED exists only where getuid does
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="ptviz-control-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(POLL_SECONDS)
        buffer = b""
        with conn:
            while not self.closing.is_set():
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return  # the client went away: nothing else to do
                buffer += chunk
                if len(buffer) > MAX_REQUEST:
                    return
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    reply = self.handle(line)
                    try:
                        conn.sendall(json.dumps(reply).encode() + b"\n")
                    except OSError:
                        return

    def handle(self, line: bytes) -> dict[str, Any]:
        """Answer one request line."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object like {\"cmd\": \"pause\"}")
            name = request.get("cmd")
            if name == "status":
                return self._reply()
            if name == "wait":
                return self._wait(request)
            self.control.send(command_from_json(request))
            return self._reply()
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}

    def _wait(self, request: dict[str, Any]) -> dict[str, Any]:
        step, paused = request.get("step"), request.get("paused")
        timeout = float(request.get("timeout", 60.0))

        def reached() -> bool:
            s = self.status
            if s["state"] not in ("starting", "running", "paused"):
                return True  # the run ended: waiting longer cannot help
            return ((step is None or s["step"] >= step) and (paused is None or s["paused"] == bool(paused)))

        with self.cond:
            if not self.cond.wait_for(lambda: reached() or self.closing.is_set(), timeout):
                return {"ok": False, "error": f"timed out after {timeout:g} s", "status": dict(self.status)}
        return self._reply()

    def _reply(self) -> dict[str, Any]:
        with self.cond:
            return {"ok": True, "status": dict(self.status)}

    def close(self) -> None:
        """Stop serving and remove the socket; connected clients see the connection end."""
        self.closing.set()
        with self.cond:
            self.cond.notify_all()
        self.sock.close()
        self.thread.join(timeout=2)
        (self.folder / SOCKET_NAME).unlink(missing_ok=True)

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------------- client (any other process)


class RemoteRun:
    """A connection to a running run's control socket; `send` a Command, read `status()`."""

    def __init__(self, run_dir: Path | str, timeout: float = 10.0):
        self.run_dir = Path(run_dir)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.lock = threading.Lock()

    def connect(self) -> RemoteRun:
        """Open the connection (send() does so when needed); RemoteError when no run listens."""
        folder = self.run_dir / CONTROL_DIR
        if not (self.run_dir / METRICS_JSONL).exists() and not folder.exists():
            raise RemoteError(f"{self.run_dir} is not a run directory (no {METRICS_JSONL})")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with _socket_path(folder) as path:
                sock.connect(path)
        except OSError:
            sock.close()
            raise RemoteError(f"no run is listening in {self.run_dir} (it ended, or was killed: "
                              f"`ptviz-tui resume {self.run_dir}` continues it)") from None
        self.sock, self.buffer = sock, b""
        return self

    def request(self, request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request and return the answer's status; RemoteError when refused or unreachable."""
        with self.lock:
            if self.sock is None:
                self.connect()
            assert self.sock is not None
            try:
                self.sock.settimeout(timeout or self.timeout)
                self.sock.sendall(json.dumps(request).encode() + b"\n")
                while b"\n" not in self.buffer:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    self.buffer += chunk
            except OSError as exc:
                self.close()
                raise RemoteError(f"lost the connection to the run in {self.run_dir} ({exc or 'timed out'})") from None
            line, self.buffer = self.buffer.split(b"\n", 1)
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RemoteError(f"the run refused {request.get('cmd')!r}: {reply.get('error')}")
        return reply["status"]

    def send(self, command: Command | dict[str, Any]) -> dict[str, Any]:
        """Queue a command (an engine Command or its JSON form) in the run; returns its status."""
        return self.request(command if isinstance(command, dict) else command_to_json(command))

    def status(self) -> dict[str, Any]:
        """Where the run is: step, epoch, paused, state, lr, pid, last checkpoint."""
        return self.request({"cmd": "status"})

    def wait(self, *, step: int | None = None, paused: bool | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Block until the run reaches `step` and/or the paused state (or ends); returns its status."""
        request: dict[str, Any] = {"cmd": "wait", "timeout": timeout}
        if step is not None:
            request["step"] = step
        if paused is not None:
            request["paused"] = paused
        return self.request(request, timeout=timeout + self.timeout)

    def close(self) -> None:
        """Close the connection (the run carries on)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> RemoteRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Followers of a run's log live with its reader; the name stays for code that watches a run from here.
LogFollower = Follower
