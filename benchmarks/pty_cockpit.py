"""The real command in a pseudo-terminal, read the way a terminal emulator (tmux, an SSH client) reads it.

A `Terminal` starts `ptviz-tui` on a fresh pty of a given size, keeps reading everything it writes (a full
pty would block the app), answers the one question the cockpit asks at start (Primary Device Attributes, as
tmux does: no graphics), keeps the screen it would show (benchmarks/screen.py), and times when a given text
first shows on that screen after a key is typed. A marker is a regular expression over the screen's rows
(joined by newlines): a title, a label, a state word.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.screen import Screen

ROOT = Path(__file__).resolve().parents[1]
ESCAPES = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[P_^][^\x1b]*\x1b\\|[()][0-9A-Za-z]|[=>78cDEHM])")
ATTRIBUTES_QUERY = b"\x1b[c"
ATTRIBUTES_ANSWER = b"\x1b[?62;22c"  # a VT220-class terminal with colour and no graphics, as tmux says


def command() -> list[str]:
    """The console script beside this Python, else `python -m ptviz` (same code either way)."""
    script = Path(sys.executable).with_name("ptviz-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ptviz"]


def environment(**extra: str) -> dict[str, str]:
    """This checkout first on the path, a colour terminal, and `extra` (OMP_NUM_THREADS...)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "TERM": "xterm-256color", "COLORTERM": "truecolor", **extra}


def plain(raw: bytes) -> bytes:
    """The text of terminal output, escape sequences taken out."""
    return ESCAPES.sub(b"", raw)


@dataclass
class _Watch:
    """A pattern waited for: the arrival time of the first chunk after which the screen matched it."""

    pattern: re.Pattern[str]
    since: int  # chunks before this one do not count
    gone: bool = False  # wait for the pattern to leave the screen instead
    not_before: float = 0.0  # output that arrived earlier (before the key was typed) does not count
    at: float | None = None

    def met(self, shown: str) -> bool:
        return (self.pattern.search(shown) is None) == self.gone


class Terminal:
    """One process on its own pty of `size` (columns, rows); see the module docstring."""

    def __init__(self, argv: list[str], size: tuple[int, int], *, cwd: Path | str | None = None,
                 env: dict[str, str] | None = None):
        self.master, slave = os.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

        def own_terminal():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env or environment(), stdin=slave, stdout=slave,
                                     stderr=slave, preexec_fn=own_terminal)
        os.close(slave)
        self.screen = Screen(columns, rows)  # as of the first `_fed` chunks, brought up to date by _advance
        self._fed = 0
        self.chunks: list[tuple[float, bytes]] = []  # (arrival time, bytes) of everything written
        self.ended_at: float | None = None
        self._new = threading.Condition()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read, name="terminal-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        tail = b""  # the end of the previous chunk: a question split across two reads is still seen
        while not self._closed.is_set():
            if not select.select([self.master], [], [], 0.05)[0]:
                if self.proc.poll() is not None and self.ended_at is None:
                    self.ended_at = time.perf_counter()
                    with self._new:
                        self._new.notify_all()
                continue
            try:
                chunk = os.read(self.master, 1 << 16)
            except OSError:  # the process ended and the pty closed
                break
            now = time.perf_counter()
            data, at = tail + chunk, 0
            while (at := data.find(ATTRIBUTES_QUERY, at)) >= 0:
                if at + len(ATTRIBUTES_QUERY) > len(tail):  # not one already answered in the last read
                    os.write(self.master, ATTRIBUTES_ANSWER)
                at += 1
            tail = chunk[-len(ATTRIBUTES_QUERY) + 1:]
            with self._new:  # only stored here: the screen is kept by whoever waits on it (see _advance)
                self.chunks.append((now, chunk))
                self._new.notify_all()
        if self.ended_at is None:
            self.ended_at = time.perf_counter()
        with self._new:
            self._new.notify_all()

    def mark(self) -> int:
        """A position in the output: text looked for after it must appear from there on."""
        with self._new:
            return len(self.chunks)

    def text(self, since: int = 0) -> str:
        """The output's text from `since` (for messages)."""
        with self._new:
            raw = b"".join(chunk for _, chunk in self.chunks[since:])
        return plain(raw).decode(errors="replace")

    def type(self, keys: bytes) -> float:
        """Type at the terminal; the time it was typed."""
        os.write(self.master, keys)
        return time.perf_counter()

    def _advance(self, watch: _Watch | None = None) -> None:
        """Apply the chunks read since the last call to the screen, checking `watch` after each one.

        The reader thread only stores what arrives, with its time, so reading never waits on this parsing
        (the app would block on a full pty and its frames would look slower than they are)."""
        with self._new:
            fresh = self.chunks[self._fed:]
        for index, (at, chunk) in enumerate(fresh, start=self._fed):
            self.screen.feed(chunk)
            if watch is not None and watch.at is None and index >= watch.since and at >= watch.not_before \
                    and watch.met(self.screen.text()):
                watch.at = at
        self._fed += len(fresh)

    def shows(self, pattern: str) -> bool:
        """Whether the screen shows `pattern` now."""
        self._advance()
        return re.search(pattern, self.screen.text()) is not None

    def _wait(self, watch: _Watch, timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        while True:
            self._advance(watch)
            if watch.at is not None:
                return watch.at
            with self._new:
                if self._fed < len(self.chunks):
                    continue
                if self.ended_at is not None or time.perf_counter() >= deadline:
                    raise TimeoutError(f"{watch.pattern.pattern!r} did not {'go' if watch.gone else 'show'} within "
                                       f"{timeout:g} s; the screen showed:\n{self.screen.text()}")
                self._new.wait(0.05)

    def appears(self, pattern: str, since: int = 0, timeout: float = 30.0) -> float:
        """The arrival time of the output after which the screen first showed `pattern` (output from mark
        `since` on)."""
        watch = _Watch(re.compile(pattern), since)
        self._advance()
        if self._fed > since and watch.met(self.screen.text()):  # shown already (by output read for another wait)
            with self._new:
                return self.chunks[self._fed - 1][0]
        return self._wait(watch, timeout)

    def latency(self, keys: bytes, pattern: str, timeout: float = 30.0, gone: bool = False) -> float:
        """Seconds from typing `keys` until the screen shows `pattern`, which it must not show before (with
        `gone`: until it no longer shows what it must show before)."""
        self._advance()
        watch = _Watch(re.compile(pattern), self._fed, gone)
        if watch.met(self.screen.text()):
            raise ValueError(f"{pattern!r} {'is not' if gone else 'is'} on the screen before {keys!r} is "
                             f"typed: it cannot time the key\n{self.screen.text()}")
        typed = watch.not_before = self.type(keys)
        return self._wait(watch, timeout) - typed

    def exit_seconds(self, keys: bytes, timeout: float = 120.0) -> float:
        """Seconds from typing `keys` until the process has ended."""
        typed = self.type(keys)
        self.proc.wait(timeout=timeout)
        return time.perf_counter() - typed

    def close(self) -> None:
        """End the process if it still runs, and stop reading."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._closed.set()
        self._reader.join(timeout=5)
        os.close(self.master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
