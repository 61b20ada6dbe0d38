"""Drive and watch a run from another process: a control socket in the run's owner-only folder, and its log.

The training process serves `RUN_DIR/control/sock` (a Unix domain socket in a 0700 folder, so only its
owner can connect; on Linux the peer's uid is checked too). Each request is one JSON line, each answer
one JSON line:

    {"cmd": "pause"} {"cmd": "resume"} {"cmd": "stop"} {"cmd": "checkpoint"} {"cmd": "evaluate"}
    {"cmd": "set_lr", "lr": 0.01} {"cmd": "scale_lr", "factor": 0.5}   (optional "timeout": seconds)
    -> {"ok": true, "status": {...}, "result": {...}} once the command took effect (stop: once the run ended)
    {"cmd": "status"}
    {"cmd": "wait", "step": 100} {"cmd": "wait", "paused": true}      (answer once true, or on timeout)
    -> {"ok": true, "status": {"step": 120, "epoch": 3, "paused": false, "state": "running", ...}}
    -> {"ok": false, "error": "..."}          (a refused or malformed request; "pending": true on a timeout)

A command's result is its outcome: evaluate gives the split, step, loss and accuracy; checkpoint the path
and step; stop the final state, step and the checkpoint written; pause, resume and the lr commands the
step and the value they set.

Any number of clients may be connected; a client coming or going never touches the run. Watching needs
no socket at all: `ptviz.engine.storage.history` reads the log (load() the history so far, reduced, then a
Follower for what comes next).
"""

from __future__ import annotations

import dataclasses
import itertools
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
    SetTrainable,
    Stop,
)
from .config import check_field
from .errors import UserError
from .events import (
    CheckpointSaved,
    CommandApplied,
    Diverged,
    EpochEnded,
    Event,
    Evaluated,
    LrChanged,
    Paused,
    RanksReported,
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
COMMAND_SECONDS = 300.0  # how long a sender waits for a command to take effect (an evaluation can be slow)
WAIT_SECONDS = 60.0  # default of a "wait" request
MAX_WAIT_SECONDS = 7 * 24 * 3600.0  # the longest one request may wait; a client that needs longer asks again
CLOSE_SECONDS = 5.0  # how long a closing server lets requests in flight send their answers
ACTIVE = ("starting", "running", "paused")  # states in which a run still applies commands
NOT_OWNER = "permission denied: the run belongs to another user"


class RemoteError(UserError):
    """The run cannot be reached, or refused a request."""


class CommandPending(RemoteError):
    """A command was sent but had not taken effect when the wait for it ran out (it stays queued)."""


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
    if isinstance(command, SetTrainable):
        return {"cmd": "unfreeze" if command.trainable else "freeze", "module": command.module}
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
    if name in ("freeze", "unfreeze"):
        module = request.get("module", "")
        if not isinstance(module, str):
            raise ValueError(f"{name} needs a module name in 'module' (\"\" for the whole model)")
        return SetTrainable(module, trainable=name == "unfreeze")
    if name in ("set_lr", "scale_lr"):
        key = "lr" if name == "set_lr" else "factor"
        value = request.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name} needs a number in {key!r}")
        if not (math.isfinite(value) and value > 0):
            what = "learning rate" if name == "set_lr" else "factor"
            raise ValueError(f"the {what} must be a positive number, got {value!r}")
        if name == "set_lr" and (why := check_field("optim.lr", float(value))):
            raise ValueError(f"learning rate not changed: optim.lr {why}, got {value:g}")
        return SetLearningRate(float(value)) if name == "set_lr" else ScaleLearningRate(float(value))
    raise ValueError(f"unknown command {name!r}; known: {', '.join([*_SIMPLE, 'checkpoint', 'set_lr', 'scale_lr', 'freeze', 'unfreeze', 'status', 'wait'])}")


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
                                       "pid": os.getpid(), "run_dir": os.path.abspath(self.run_dir)}
        self.tickets = itertools.count(1)
        self.waiting: set[str] = set()  # tickets of commands whose senders wait for the outcome
        self.applied: dict[str, tuple[CommandApplied, dict[str, Any]]] = {}  # outcome and status at that moment
        self.in_flight = 0  # requests being answered; close() lets them finish
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
        """Track the run's position and state from its events, and the outcome of commands sent here."""
        update: dict[str, Any] = {}
        if isinstance(event, RunStarted):
            update = {"state": "running", "step": event.start_step, "epoch": event.epoch,
                      "total_steps": event.total_steps, "epochs": event.epochs, "world_size": event.world_size}
        elif isinstance(event, StepMetrics):
            update = {"step": event.last_step, "epoch": event.epoch, "lr": event.lrs[-1], "loss": event.losses[-1]}
        elif isinstance(event, Paused):
            update = {"paused": True, "state": "paused", "step": event.step}
        elif isinstance(event, Resumed):
            update = {"paused": False, "state": "running", "step": event.step}
        elif isinstance(event, LrChanged):
            update = {"lr": event.lr, "lr_changes": self.status.get("lr_changes", 0) + 1}
        elif isinstance(event, Evaluated) and event.mid_epoch:
            update = {"step": event.step, "last_evaluation": {
                "split": event.split, "step": event.step, "epoch": event.epoch, "loss": event.loss,
                "accuracy": event.accuracy, "samples": event.samples, "metrics": event.metrics}}
        elif isinstance(event, EpochEnded):
            update = {"step": event.step, "epoch": event.epoch}
        elif isinstance(event, Evaluated):
            update = {"step": event.step}
        elif isinstance(event, CheckpointSaved):
            path = os.path.abspath(event.path)  # paths in answers hold wherever the sender runs
            update = {"last_checkpoint": path, "checkpoint_step": event.step}
            if event.reason in ("stopped", "final"):
                update["final_checkpoint"] = path
        elif isinstance(event, Diverged):
            update = {"diverged_at": event.step}
        elif isinstance(event, RunFinished):
            update = {"state": event.state, "paused": False, "step": event.step, "epoch": event.epoch,
                      "reason": event.reason}
        elif isinstance(event, RunFailed):
            update = {"state": "failed", "paused": False, "reason": event.message}
        elif isinstance(event, RanksReported):  # several ranks: where each one is, as rank 0 last heard
            update = {"ranks": [{"rank": r, "host": h, "step": st, "lr": lr, "paused": event.paused}
                                for r, (h, st, lr) in enumerate(zip(event.hosts, event.steps,
                                                                    event.lrs or (None,) * len(event.steps)))]}
        with self.cond:
            self.status.update(update)
            if isinstance(event, CommandApplied) and event.ticket in self.waiting:
                self.applied[event.ticket] = (event, dict(self.status))
            if update or isinstance(event, CommandApplied):
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
                with conn:
                    try:
                        conn.sendall(json.dumps({"ok": False, "error": NOT_OWNER}).encode() + b"\n")
                    except OSError:
                        pass
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
                    if not self._answer(conn, line):
                        return

    def _answer(self, conn: socket.socket, line: bytes) -> bool:
        """Handle one request and send its answer; False when the client cannot be reached any more."""
        with self.cond:
            self.in_flight += 1
        try:
            conn.sendall(json.dumps(self.handle(line)).encode() + b"\n")
            return True
        except OSError:
            return False
        finally:
            with self.cond:
                self.in_flight -= 1
                self.cond.notify_all()

    def handle(self, line: bytes) -> dict[str, Any]:
        """Answer one request line; a malformed request gets {"ok": false, "error": ...}, never an exception."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object like {\"cmd\": \"pause\"}")
            name = request.get("cmd")
            if name == "status":
                return self._reply()
            if name == "wait":
                return self._wait(request)
            return self._command(request)
        except ValueError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a bad request must never print into the run's output
            return {"ok": False, "error": f"cannot handle this request ({type(exc).__name__}: {exc})"}

    def _command(self, request: dict[str, Any]) -> dict[str, Any]:
        """Queue a command and answer once it took effect (stop: once the run ended), or on timeout."""
        command = command_from_json(request)
        name = request["cmd"]
        timeout = _seconds(request, COMMAND_SECONDS)
        ticket = str(next(self.tickets))
        with self.cond:
            if self.status["state"] not in ACTIVE:
                return {"ok": False, "error": self._ended(name), "status": dict(self.status)}
            self.waiting.add(ticket)
        self.control.send(dataclasses.replace(command, ticket=ticket))

        def answered() -> bool:
            ended = self.status["state"] not in ACTIVE or self.closing.is_set()
            return ended if name == "stop" else ended or ticket in self.applied

        with self.cond:
            self.cond.wait_for(answered, timeout)
            self.waiting.discard(ticket)
            outcome = self.applied.pop(ticket, None)
            status = dict(self.status)
        if name == "stop" and status["state"] not in ACTIVE:
            return {"ok": True, "status": status, "result": {
                "state": status["state"], "step": status["step"], "epoch": status["epoch"],
                "reason": status.get("reason"),
                # A stop at the boundary right after an epoch's save leaves that last.pt as the final one.
                "checkpoint": status.get("final_checkpoint") or status.get("last_checkpoint")}}
        if outcome is None:
            if status["state"] in ACTIVE and not self.closing.is_set():
                return {"ok": False, "pending": True, "status": status,
                        "error": f"{name} was sent but had not taken effect after {timeout:g} s; it stays queued "
                                 "and applies at the run's next step boundary"}
            return {"ok": False, "error": self._ended(name), "status": status}
        applied, seen = outcome
        if applied.error:
            return {"ok": False, "error": applied.error, "status": seen}
        return {"ok": True, "status": seen, "result": _result(name, applied, seen)}

    def _ended(self, name: str) -> str:
        s = self.status
        return f"the run ended ({s['state']} at step {s['step']}) before {name} took effect"

    def _wait(self, request: dict[str, Any]) -> dict[str, Any]:
        step, paused = request.get("step"), request.get("paused")
        if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
            raise ValueError(f"wait's step must be a whole number, got {step!r}")
        if paused is not None and not isinstance(paused, bool):
            raise ValueError(f"wait's paused must be true or false, got {paused!r}")
        timeout = _seconds(request, WAIT_SECONDS)

        def reached() -> bool:
            s = self.status
            if s["state"] not in ACTIVE:
                return True  # the run ended: waiting longer cannot help
            return (step is None or s["step"] >= step) and (paused is None or s["paused"] == paused)

        with self.cond:
            if not self.cond.wait_for(lambda: reached() or self.closing.is_set(), timeout):
                return {"ok": False, "error": f"timed out after {timeout:g} s", "status": dict(self.status)}
        return self._reply()

    def _reply(self) -> dict[str, Any]:
        with self.cond:
            return {"ok": True, "status": dict(self.status)}

    def close(self) -> None:
        """Stop serving and remove the socket; answers in flight go out first, then clients see the end."""
        self.closing.set()
        with self.cond:
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.in_flight == 0, CLOSE_SECONDS)
        self.sock.close()
        self.thread.join(timeout=2)
        (self.folder / SOCKET_NAME).unlink(missing_ok=True)

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _seconds(request: dict[str, Any], default: float) -> float:
    """The request's "timeout" in seconds; ValueError unless it is a number from 0 to MAX_WAIT_SECONDS."""
    value = request.get("timeout", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_WAIT_SECONDS:
        raise ValueError(f"timeout must be a number of seconds from 0 to {MAX_WAIT_SECONDS:g}, got {value!r}")
    return float(value)


def _result(name: str, applied: CommandApplied, status: dict[str, Any]) -> dict[str, Any]:
    """What a command that took effect did, from the run's status at that moment."""
    if name == "evaluate":
        return dict(status.get("last_evaluation") or {})
    if name == "checkpoint":
        return {"checkpoint": status.get("last_checkpoint"), "step": status.get("checkpoint_step")}
    if name in ("set_lr", "scale_lr"):
        return {"lr": status.get("lr"), "step": applied.step}
    return {"paused": status["paused"], "step": applied.step}


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
        except PermissionError:  # EACCES or EPERM: the owner-only folder or socket of someone else's run
            sock.close()
            raise RemoteError(f"{NOT_OWNER} ({self.run_dir}: only its owner can reach its control socket)") from None
        except OSError:
            sock.close()
            raise RemoteError(f"no run is listening in {self.run_dir} (it ended, or was killed: "
                              f"`ptviz-tui resume {self.run_dir}` continues it)") from None
        self.sock, self.buffer = sock, b""
        return self

    def request(self, request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request and return the answer's status, with "result" when the answer has one.

        RemoteError when the run refused it or cannot be reached; CommandPending when a command had not
        taken effect in time.
        """
        reply = self._exchange(request, timeout)
        if not reply.get("ok"):
            error = str(reply.get("error"))
            if reply.get("pending"):
                raise CommandPending(error)
            if error.startswith(NOT_OWNER):
                raise RemoteError(f"{error} ({self.run_dir})")
            raise RemoteError(f"the run refused {request.get('cmd')!r}: {error}")
        status = reply.get("status", {})
        return {**status, "result": reply["result"]} if "result" in reply else status

    def _exchange(self, request: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        """One request out, one answer back."""
        with self.lock:
            if self.sock is None:
                self.connect()
            assert self.sock is not None
            try:
                self.sock.settimeout(timeout or self.timeout)
                try:
                    self.sock.sendall(json.dumps(request).encode() + b"\n")
                except BrokenPipeError:
                    pass  # a run that refuses this user answers and hangs up at once: read what it said
                while b"\n" not in self.buffer:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed")
                    self.buffer += chunk
            except OSError as exc:
                self.close()
                raise RemoteError(f"lost the connection to the run in {self.run_dir} ({exc or 'timed out'})") from None
            line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise RemoteError(f"the run in {self.run_dir} gave an answer that is not a JSON object: {line[:200]!r}")
        return reply

    def send(self, command: Command | dict[str, Any], timeout: float = COMMAND_SECONDS) -> dict[str, Any]:
        """Send a command (an engine Command or its JSON form) and wait up to `timeout` s for it to take effect.

        Returns the run's status at that moment, its "result" the command's outcome (see the module docstring).
        """
        request = dict(command) if isinstance(command, dict) else command_to_json(command)
        request["timeout"] = timeout
        return self.request(request, timeout=timeout + self.timeout)

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
