"""An append-only log file that never keeps half a line: text whose write failed stays queued for the next try."""

from __future__ import annotations

import os
from pathlib import Path


class AppendFile:
    """Lines appended with os.write; after a failed write (a full disk) the file is cut back to its last whole
    line and the text waits, so a later write, once there is space, puts every line down exactly once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.size = os.fstat(self.fd).st_size  # bytes known to be whole lines
        self.pending = bytearray()

    def add(self, text: str | bytes) -> None:
        """Queue text (whole lines), or whole binary records, for the next flush."""
        self.pending += text if isinstance(text, bytes) else text.encode("utf-8")

    def write(self, text: str) -> None:
        """Queue text and hand everything queued to the operating system; OSError when that fails."""
        self.add(text)
        self.flush()

    def flush(self) -> None:
        """Write the queued text; on failure cut off what part of it landed and keep it queued."""
        if not self.pending:
            return
        data, done = bytes(self.pending), 0
        try:
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except OSError:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass  # a reader skips an unfinished last line anyway
            raise
        self.size += len(data)
        del self.pending[:len(data)]

    def sync(self) -> None:
        """Flush, then make the file durable."""
        self.flush()
        os.fsync(self.fd)

    def close(self) -> None:
        """Close the file (queued text that could not be written is dropped)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
