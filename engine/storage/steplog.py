"""The binary copy of a run log: steps.bin and events.idx beside metrics.jsonl, their writer and the JSONL scanner.

metrics.jsonl stays the record. Beside it, the run log appends
- steps.bin: one fixed-width record per step row (STEP_DTYPE), with the byte offset where that row ends in
  metrics.jsonl, so a reader knows how much of the JSONL the copy covers;
- events.idx: one record per other row (EVENT_DTYPE): where it sits in metrics.jsonl, how many step rows
  came before it, its step and kind, and whether it has a line in metrics.csv.
Both start with a 16-byte header (magic, version, record size). A process killed mid-write leaves at most
its last rows uncovered; readers parse whatever lies past the copy (`scan`), and so read logs written
before the copy existed, in chunks and with numpy, never as one Python object per step.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import logrows
from .appendfile import AppendFile

STEPS_BIN = "steps.bin"
EVENTS_IDX = "events.idx"

STEP_DTYPE = np.dtype([("step", "<i8"), ("epoch", "<i4"), ("epoch_step", "<i4"), ("loss", "<f8"), ("lr", "<f8"),
                       ("elapsed", "<f8"), ("samples_per_s", "<f8"), ("wall", "<f8"), ("end", "<i8")])
EVENT_DTYPE = np.dtype([("start", "<i8"), ("end", "<i8"), ("steps", "<i8"), ("step", "<i8"), ("kind", "<i4"),
                        ("csv", "<i4")])
STEP_MAGIC, EVENT_MAGIC, VERSION = b"ptvizstp", b"ptvizevt", 1
HEADER = struct.Struct("<8sII")  # magic, version, record size
NO_STEP = -1  # events.idx "step" of a row that has none (started, notice)

# Kind codes in events.idx; new kinds go at the end so older files keep their meaning.
KIND_CODES = ("other", "started", "eval", "epoch", "paused", "resumed", "lr", "checkpoint", "notice", "diverged",
              "finished", "failed")
KIND = {name: code for code, name in enumerate(KIND_CODES)}
TERMINAL_KINDS = (KIND["finished"], KIND["failed"])


def has_csv_line(row: dict[str, Any]) -> bool:
    """Whether a non-step row has a line in metrics.csv (epoch rows, and evaluations made mid-epoch)."""
    return row.get("kind") == "epoch" or (row.get("kind") == "eval" and bool(row.get("mid_epoch")))


def event_record(start: int, end: int, steps: int, row: dict[str, Any]) -> tuple:
    """The events.idx record of a non-step row at [start, end) of metrics.jsonl after `steps` step rows."""
    step = row.get("step")
    step = int(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else NO_STEP
    return (start, end, steps, step, KIND.get(row.get("kind", ""), 0), int(has_csv_line(row)))


# ----------------------------------------------------------------------------- reading the binary files


class RecordFile:
    """The first `count` records of a binary log file, read on demand.

    Reads go through pread, not a memory map: a file cut shorter meanwhile (a resume truncating it) gives
    fewer records where a map would kill the process with SIGBUS.
    """

    def __init__(self, path: Path, dtype: np.dtype, count: int):
        self.path, self.dtype, self.count = Path(path), dtype, count

    def __len__(self) -> int:
        return self.count

    def head(self, count: int) -> RecordFile:
        """The first `count` records."""
        return RecordFile(self.path, self.dtype, max(0, min(count, self.count)))

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.count)
            return self.read(start, stop)
        index = key + self.count if key < 0 else key
        records = self.read(index, index + 1) if 0 <= index < self.count else ()
        if not len(records):
            raise IndexError(key)
        return records[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Records [start, stop) (fewer if the file has been cut shorter)."""
        size = self.dtype.itemsize
        if stop <= start:
            return np.empty(0, self.dtype)
        with open(self.path, "rb") as fh:
            data = os.pread(fh.fileno(), (stop - start) * size, HEADER.size + start * size)
        return np.frombuffer(data, self.dtype, len(data) // size)


def read_records(path: Path, dtype: np.dtype, magic: bytes) -> RecordFile | None:
    """The whole records of a binary log file, or None when it is missing or not one."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(HEADER.size)
    except OSError:
        return None
    if len(head) < HEADER.size or HEADER.unpack(head) != (magic, VERSION, dtype.itemsize):
        return None
    return RecordFile(path, dtype, (size - HEADER.size) // dtype.itemsize)


# ----------------------------------------------------------------------------- scanning the JSONL


@dataclass
class Scanned:
    """Rows parsed from a stretch of metrics.jsonl: step records, and the other rows with their places."""

    steps: np.ndarray  # STEP_DTYPE, in file order
    events: np.ndarray  # EVENT_DTYPE, "steps" counted from the start of the stretch
    rows: list[dict[str, Any]]  # the decoded non-step rows, one per event record
    end: int  # offset just past the last complete line


_STEP_PREFIX = b'{"kind":"step","step":'
# The keys of logrows' step layout after the step, in order; replacing each by a comma leaves bare numbers.
_STEP_KEYS = (b',"epoch":', b',"epoch_step":', b',"loss":', b',"lr":', b',"elapsed":', b',"samples_per_s":',
              b',"wall":')


def scan(data: bytes, base: int) -> Scanned:
    """Parse the complete lines of `data`, which starts at offset `base` of metrics.jsonl.

    Step rows in logrows' own layout are parsed by C code (bytes.replace, then numpy's text parser);
    other lines are JSON-decoded one by one (they are few), and so is any step row in another layout.
    Lines that are not rows (a write cut short by a kill) are skipped, as logrows.read_rows does.
    """
    complete = data.rfind(b"\n") + 1
    data = data[:complete]
    if not data:
        return Scanned(np.empty(0, STEP_DTYPE), np.empty(0, EVENT_DTYPE), [], base)
    buf = np.frombuffer(data, np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    starts = np.concatenate(([0], ends[:-1]))
    is_step = (ends - starts) > len(_STEP_PREFIX)
    last = len(buf) - 1
    for k, char in enumerate(_STEP_PREFIX):
        is_step &= buf[np.minimum(starts + k, last)] == char
    steps = _fast_steps(data, buf, starts, ends, is_step)
    if steps is None:  # some step line is laid out differently: decode those lines one by one
        steps, is_step = np.empty(0, STEP_DTYPE), np.zeros_like(is_step)
    others = np.flatnonzero(~is_step)
    extra_steps, events, rows = [], [], []
    for i in others:
        row = logrows.decode_line(data[starts[i]:ends[i]])
        if row is None:
            continue
        if row["kind"] == "step":
            extra_steps.append(_step_record(row, base + int(ends[i])))
        else:
            rows.append(row)
            events.append((base + int(starts[i]), base + int(ends[i]), 0, row))
    steps["end"] += base
    if extra_steps:
        steps = np.sort(np.concatenate([steps, np.array(extra_steps, STEP_DTYPE)]), order="end")
    records = np.array([event_record(start, end, 0, row) for start, end, _, row in events], EVENT_DTYPE)
    if len(records):
        records["steps"] = np.searchsorted(steps["end"], records["start"], side="right")
    return Scanned(steps, records, rows, base + complete)


def _fast_steps(data: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                is_step: np.ndarray) -> np.ndarray | None:
    """Records of the step lines (ends relative to `data`), or None when one is not in logrows' layout."""
    count = int(is_step.sum())
    records = np.empty(count, STEP_DTYPE)
    if count == 0:
        return records
    text = data if count == len(starts) else buf[np.repeat(is_step, ends - starts)].tobytes()
    if any(text.count(key) != count for key in _STEP_KEYS) or text.count(b"}\n") != count:
        return None
    # bytes.replace and numpy's text parser run in C: no Python object per row.
    text = text.replace(_STEP_PREFIX, b"")
    for key in _STEP_KEYS:
        text = text.replace(key, b",")
    numbers = np.fromstring(text.replace(b"}\n", b",").replace(b"null", b"nan"), sep=",")
    if numbers.size != 8 * count:
        return None
    numbers = numbers.reshape(count, 8)
    for i, name in enumerate(STEP_DTYPE.names[:8]):
        records[name] = numbers[:, i]
    records["end"] = ends[is_step]
    return records


def _step_record(row: dict[str, Any], end: int) -> tuple:
    def number(key: str, default: float = float("nan")) -> float:
        value = row.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    return (int(number("step", 0)), int(number("epoch", 0)), int(number("epoch_step", 0)), number("loss"),
            number("lr", 0.0), number("elapsed", 0.0), number("samples_per_s", 0.0), number("wall", 0.0), end)


def scan_file(path: Path, start: int, stop: int, chunk: int = 16 << 20) -> Scanned:
    """`scan` over [start, stop) of a file, read `chunk` bytes at a time (records are joined at the end)."""
    steps, events, rows = [], [], []
    offset, before = start, 0
    with open(path, "rb") as fh:
        while offset < stop:
            fh.seek(offset)
            data = fh.read(min(chunk, stop - offset))
            if not data:
                break
            part = scan(data, offset)
            if part.end == offset:  # no newline in a whole chunk: read a longer one
                if len(data) < chunk or chunk >= stop - offset:
                    break
                chunk *= 2
                continue
            part.events["steps"] += before
            before += len(part.steps)
            steps.append(part.steps)
            events.append(part.events)
            rows.extend(part.rows)
            offset = part.end
    return Scanned(np.concatenate(steps) if steps else np.empty(0, STEP_DTYPE),
                   np.concatenate(events) if events else np.empty(0, EVENT_DTYPE), rows, offset)


# ----------------------------------------------------------------------------- writing


def _prepare(path: Path, magic: bytes, dtype: np.dtype, keep: int) -> None:
    """Cut a binary log to its header and first `keep` records (a fresh header when it has none)."""
    with open(path, "r+b" if path.exists() else "w+b") as fh:
        head = fh.read(HEADER.size)
        if len(head) < HEADER.size or HEADER.unpack(head) != (magic, VERSION, dtype.itemsize):
            fh.seek(0)
            fh.truncate()
            fh.write(HEADER.pack(magic, VERSION, dtype.itemsize))
            keep = 0
        fh.truncate(HEADER.size + keep * dtype.itemsize)


class StepLogWriter:
    """Appends a run log's binary copy: step records to steps.bin, other rows' records to events.idx.

    Writes go through AppendFile, like the JSONL's: a write that fails (a full disk) leaves no part of a
    record behind and is made again by the next flush, so records never shift out of line.
    """

    def __init__(self, run_dir: Path, steps: int = 0, events: int = 0):
        """Open both files cut to `steps` and `events` records (0 and 0 start them afresh)."""
        run_dir = Path(run_dir)
        _prepare(run_dir / STEPS_BIN, STEP_MAGIC, STEP_DTYPE, steps)
        _prepare(run_dir / EVENTS_IDX, EVENT_MAGIC, EVENT_DTYPE, events)
        self.steps_file = AppendFile(run_dir / STEPS_BIN)
        self.events_file = AppendFile(run_dir / EVENTS_IDX)
        self.steps = (self.steps_file.size - HEADER.size) // STEP_DTYPE.itemsize  # records added, written or not

    def add_steps(self, records: np.ndarray) -> None:
        """Queue step records (STEP_DTYPE) for the next flush."""
        if len(records):
            self.steps_file.add(np.ascontiguousarray(records, STEP_DTYPE).tobytes())
            self.steps += len(records)

    def add_events(self, records: np.ndarray) -> None:
        """Queue event records (EVENT_DTYPE) for the next flush."""
        if len(records):
            self.events_file.add(np.ascontiguousarray(records, EVENT_DTYPE).tobytes())

    def flush(self) -> None:
        """Hand what is queued to the operating system; OSError when that fails (it stays queued)."""
        self.steps_file.flush()
        self.events_file.flush()

    def sync(self) -> None:
        """Flush, then make both files durable."""
        self.steps_file.sync()
        self.events_file.sync()

    def close(self) -> None:
        """Close both files."""
        self.steps_file.close()
        self.events_file.close()


def step_records(event: Any, rows: list[dict[str, Any]], ends: np.ndarray) -> np.ndarray:
    """The steps.bin records of one StepMetrics' rows, which end at `ends` in metrics.jsonl."""
    records = np.empty(len(rows), STEP_DTYPE)
    records["step"] = event.steps
    last = event.last_step
    records["epoch"] = event.epoch
    records["epoch_step"] = event.epoch_step - (last - records["step"])
    losses = np.asarray(event.losses, dtype=np.float64)
    records["loss"] = np.where(np.isfinite(losses), losses, np.nan)  # the JSONL writes null, read back as NaN
    records["lr"] = event.lrs
    first = rows[0]  # every row of one event shares these, rounded as the JSONL holds them
    records["elapsed"] = first["elapsed"]
    records["samples_per_s"] = first["samples_per_s"]
    records["wall"] = first["wall"]
    records["end"] = ends
    return records
