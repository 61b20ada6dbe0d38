"""A process on its own pseudo-terminal, as over SSH: the test plays the terminal and can hang it up."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import threading
import time


def as_from_a_shell() -> None:
    """In a child before exec: the stop signals as a login shell hands them to a command it runs.

    A suite started under `nohup` or in the background (`cmd &`) ignores SIGHUP or SIGINT, every child
    inherits that, and ptviz keeps a signal ignored at start ignored (as it should for `nohup ptviz-tui`);
    the processes that test the signals themselves must start as a terminal would start them.
    """
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


class PtyTerminal:
    """Runs `argv` as the session leader of a fresh pty and keeps reading what it writes, like a terminal.

    Closing the master side (`hang_up`) is what an SSH drop does: the kernel sends the session SIGHUP
    and later writes to the terminal fail.
    """

    def __init__(self, argv: list[str], *, cwd, env: dict, rows: int = 24, columns: int = 80):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

        def own_terminal():
            as_from_a_shell()
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     preexec_fn=own_terminal)
        os.close(slave)
        self.seen = bytearray()
        self._done = threading.Event()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:  # keep reading so the process never blocks on a full pty
        while not self._done.is_set():
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.seen.extend(os.read(self.master, 65536))
                except OSError:
                    return

    def text(self) -> str:
        """Everything written so far, decoded (for failure messages)."""
        return bytes(self.seen).decode(errors="replace")

    def wait_for(self, pattern: bytes, timeout: float = 120.0) -> re.Match:
        """Wait until the output matches `pattern` (a regex); fail if the process ends first or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, bytes(self.seen))
            if match:
                return match
            assert self.proc.poll() is None, f"exited {self.proc.returncode} before {pattern!r}:\n{self.text()[-2000:]}"
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout} s:\n{self.text()[-2000:]}"
            time.sleep(0.1)

    def write(self, data: bytes) -> None:
        """Type into the terminal."""
        os.write(self.master, data)

    def hang_up(self) -> None:
        """Close the terminal, as a dropped connection does. Safe to call twice."""
        if not self._done.is_set():
            self._done.set()
            self._reader.join()
            os.close(self.master)
