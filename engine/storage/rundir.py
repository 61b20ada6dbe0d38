"""A run's directory: runs/<date>-<time>-<what>/ with its configuration, checkpoints and private lock."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no run locks (a run's state then reads from its summary only)
    fcntl = None  # type: ignore[assignment]

from ..config import RunConfig, dump_toml
from ..errors import ConfigError, FieldError, UserError


def run_name(config: RunConfig) -> str:
    """What a run folder is called after its date: the recipe's name, or the model and the data set
    ('resnet18-fake', 'my_models.make-cifar10') when they are not the recipe's."""
    from ..recipes import RECIPES

    preset = RECIPES[config.recipe]() if config.recipe in RECIPES else None
    if preset is not None and (preset.model.name, preset.data.dataset) == (config.model.name, config.data.dataset):
        name = config.recipe
    else:
        where, _, factory = config.model.name.rpartition(":")  # file.py:make or package.module:make
        source = Path(where).stem if where.endswith(".py") or "/" in where else where.rpartition(".")[2]
        model = f"{source}.{factory}" if where else config.model.name
        name = f"{model}-{config.data.dataset}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "run"


def create_run_dir(config: RunConfig, now: float | None = None, name: str = "") -> Path:
    """Make a fresh run directory under config.output.runs_dir and write config.toml into it.

    The folder is named after the time and what trains (run_name), or `name` (a task's) when given.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    parent = Path(config.output.runs_dir)
    named = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") if name else run_name(config)
    base = parent / f"{stamp}-{named}"
    path, n = base, 1
    try:
        parent.mkdir(parents=True, exist_ok=True)
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                n += 1
                path = base.with_name(f"{base.name}-{n}")
    except OSError as exc:
        why = "is a file, not a folder" if parent.exists() and not parent.is_dir() else \
            f"cannot hold run directories: {exc.strerror or exc}"
        raise ConfigError([FieldError("output.runs_dir", str(parent), why)]) from None
    (path / "checkpoints").mkdir()
    write_config(path, config)
    return path


def write_config(run_dir: Path, config: RunConfig) -> None:
    """Write the run's resolved configuration to config.toml (again when a resume changed it)."""
    (Path(run_dir) / "config.toml").write_text(dump_toml(config))


CONTROL_DIR = "control"  # owner-only (0700): the run's lock file and control socket
LOCK_NAME = "lock"


def control_dir(run_dir: Path) -> Path:
    """The run's private folder, created owner-only; UserError when someone else could enter it."""
    folder = Path(run_dir) / CONTROL_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise UserError(f"{folder} belongs to another user; refusing to use it")
    if info.st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


_HELD: set[int] = set()  # lock file descriptors this process holds


def _close_held_in_child() -> None:
    """In a forked child (a DataLoader worker), let go of the parent's run locks: a flock lives as long as any
    copy of its descriptor, so a worker outliving a killed parent for a few seconds would keep the run locked."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


class RunLock:
    """An exclusive lock on a run directory held while a process trains in it (released even by SIGKILL)."""

    def __init__(self, run_dir: Path):
        self.path = control_dir(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock; UserError naming the holder's pid when another process trains here."""
        if fcntl is None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UserError(f"{self.path.parent.parent} is in use by a running process (pid {holder}); "
                            f"attach to it with: ptviz-tui attach {self.path.parent.parent}") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        _HELD.add(fd)
        return self

    def release(self) -> None:
        """Give the lock up."""
        if self.fd is not None:
            _HELD.discard(self.fd)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder_pid(run_dir: Path) -> int | None:
    """The pid of the process training in `run_dir`, or None when nobody holds its lock."""
    path = Path(run_dir) / CONTROL_DIR / LOCK_NAME
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.read(fd, 32).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
    return None
