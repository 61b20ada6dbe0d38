"""The binary copy of a run log: steps.bin and events.idx beside metrics.jsonl, their writer and the JSONL scanner.

metrics.jsonl stays the record. Beside it, the run log appends
- steps.bin: one fixed-width record per step row (STEP_DTYPE), with the byte offset where that row ends in
  metrics.jsonl, so a reader knows how much of the JSONL the copy covers, then the row's extra values as
  float64 columns (its grad norm, a task's named metrics; NaN where a row has none);
- events.idx: one record per other row (EVENT_DTYPE): where it sits in metrics.jsonl, how many step rows
  came before it, its step and kind, and whether it has a line in metrics.csv.
Both start with a 16-byte header (magic, version, record size); steps.bin with extra columns is version 2,
whose header goes on with the columns' names (version 1, without any, still reads and is still written for
runs that have none). A process killed mid-write leaves at most
its last rows uncovered; readers parse whatever lies past the copy (`scan`), and so read logs written
before the copy existed, in chunks and with numpy, never as one Python object per step.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Sequence
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
EXTRAS_VERSION = 2  # steps.bin whose records go on with extra float64 columns, named in its header
HEADER = struct.Struct("<8sII")  # magic, version, record size
NAMES = struct.Struct("<I")  # version 2: the byte length of the names' JSON list that follows (padded to 8)
# A step row's own keys, in logrows' order; any after them are its extra values.
FIXED_KEYS = ("kind", "step", "epoch", "epoch_step", "loss", "lr", "elapsed", "samples_per_s", "wall")
NO_STEP = -1  # events.idx "step" of a row that has none (started, notice)

# Kind codes in events.idx; new kinds go at the end so older files keep their meaning.
KIND_CODES = ("other", "started", "eval", "epoch", "paused", "resumed", "lr", "checkpoint", "notice", "diverged",
              "finished", "failed")
KIND = {name: code for code, name in enumerate(KIND_CODES)}
TERMINAL_KINDS = (KIND["finished"], KIND["failed"])


def step_dtype(extras: Sequence[str] = ()) -> np.dtype:
    """The steps.bin record of rows with these extra values (STEP_DTYPE when there are none)."""
    return np.dtype(STEP_DTYPE.descr + [(name, "<f8") for name in extras]) if extras else STEP_DTYPE


def extras_of(records: np.ndarray | np.dtype) -> tuple[str, ...]:
    """The extra columns of step records (or of their dtype), in order."""
    dtype = records if isinstance(records, np.dtype) else records.dtype
    return dtype.names[len(STEP_DTYPE.names):]


def union(*names: Iterable[str]) -> tuple[str, ...]:
    """Names of several lists, each once, in the order first seen."""
    return tuple(dict.fromkeys(n for group in names for n in group))


def widen(records: np.ndarray, extras: Sequence[str]) -> np.ndarray:
    """Step records with exactly these extra columns: those they lack are NaN, others left out."""
    dtype = step_dtype(extras)
    if records.dtype == dtype:
        return records
    out = np.empty(len(records), dtype)
    have = set(records.dtype.names)
    for name in dtype.names:
        out[name] = records[name] if name in have else np.nan
    return out


def join_steps(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Step records of several arrays in one, with every extra column any of them has."""
    extras = union(*map(extras_of, parts))
    if not parts:
        return np.empty(0, STEP_DTYPE)
    return np.concatenate([widen(part, extras) for part in parts])


def steps_header(extras: Sequence[str] = ()) -> bytes:
    """The header of a steps.bin with these extra columns (version 1 when there are none)."""
    dtype = step_dtype(extras)
    if not extras:
        return HEADER.pack(STEP_MAGIC, VERSION, dtype.itemsize)
    names = json.dumps(list(extras)).encode()
    names += b" " * (-(HEADER.size + NAMES.size + len(names)) % 8)  # records start 8-aligned
    return HEADER.pack(STEP_MAGIC, EXTRAS_VERSION, dtype.itemsize) + NAMES.pack(len(names)) + names


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

    def __init__(self, path: Path, dtype: np.dtype, count: int, offset: int = HEADER.size):
        self.path, self.dtype, self.count, self.offset = Path(path), dtype, count, offset  # offset: the header's size

    def __len__(self) -> int:
        return self.count

    def head(self, count: int) -> RecordFile:
        """The first `count` records."""
        return RecordFile(self.path, self.dtype, max(0, min(count, self.count)), self.offset)

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
            data = os.pread(fh.fileno(), (stop - start) * size, self.offset + start * size)
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


def read_steps_file(path: Path) -> RecordFile | None:
    """The whole records of a steps.bin of either version, or None when it is missing or not one."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(HEADER.size + NAMES.size)
            if len(head) < HEADER.size:
                return None
            magic, version, itemsize = HEADER.unpack(head[:HEADER.size])
            if magic != STEP_MAGIC or version not in (VERSION, EXTRAS_VERSION):
                return None
            extras: tuple[str, ...] = ()
            offset = HEADER.size
            if version == EXTRAS_VERSION:
                if len(head) < HEADER.size + NAMES.size:
                    return None
                (length,) = NAMES.unpack(head[HEADER.size:])
                if length > 1 << 20:
                    return None
                names = json.loads(fh.read(length))
                extras, offset = tuple(names) if isinstance(names, list) else (), HEADER.size + NAMES.size + length
                if not extras or not all(isinstance(n, str) and n not in STEP_DTYPE.names for n in extras):
                    return None
            dtype = step_dtype(extras)
    except (OSError, ValueError, TypeError):
        return None
    if dtype.itemsize != itemsize or len(set(extras)) != len(extras):
        return None
    return RecordFile(path, dtype, max(0, size - offset) // itemsize, offset)


def lacks_extras(records: RecordFile, jsonl: Path) -> bool:
    """Whether a copy without extra columns has step rows that carry extra values (a version-1 copy of a run
    that clipped or had named metrics): the first and last rows it covers are read to tell."""
    if extras_of(records.dtype) or not len(records):
        return False
    try:
        with open(jsonl, "rb") as fh:
            for i in {0, len(records) - 1}:
                end = int(records[i]["end"])
                start = max(0, end - (64 << 10))
                line = os.pread(fh.fileno(), end - start, start)
                row = logrows.decode_line(line[line.rfind(b"\n", 0, len(line) - 1) + 1:])
                if row is not None and row.get("kind") == "step" and any(k not in FIXED_KEYS for k in row):
                    return True
    except (OSError, IndexError):
        pass
    return False


# ----------------------------------------------------------------------------- scanning the JSONL


@dataclass
class Scanned:
    """Rows parsed from a stretch of metrics.jsonl: step records, and the other rows with their places."""

    steps: np.ndarray  # step_dtype(its extras), in file order
    events: np.ndarray  # EVENT_DTYPE, "steps" counted from the start of the stretch
    rows: list[dict[str, Any]]  # the decoded non-step rows, one per event record
    end: int  # offset just past the last complete line
    skipped: int = 0  # lines that are not rows (garbled), left out


_STEP_PREFIX = b'{"kind":"step","step":'
# The keys of logrows' step layout after the step, in order; replacing each by a comma leaves bare numbers.
_STEP_KEYS = (b',"epoch":', b',"epoch_step":', b',"loss":', b',"lr":', b',"elapsed":', b',"samples_per_s":',
              b',"wall":')
# '":' in _STEP_PREFIX. It ends each key and no value holds a quote, so a line's count of '":' is its keys.
_KEYS_IN_PREFIX = 2


def scan(data: bytes, base: int) -> Scanned:
    """Parse the complete lines of `data`, which starts at offset `base` of metrics.jsonl.

    Step rows in logrows' own layout, extra values included (the same extra keys in the same order on every
    step line of `data`), are parsed by C code (bytes.replace, then numpy's text parser); other lines are
    JSON-decoded one by one (they are few), and so is every step row when their layouts differ.
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
    skipped = 0
    for i in others:
        row = logrows.decode_line(data[starts[i]:ends[i]])
        if row is None:
            skipped += ends[i] - starts[i] > 1  # an empty line is no loss
            continue
        if row["kind"] == "step":
            extra_steps.append((row, base + int(ends[i])))
        else:
            rows.append(row)
            events.append((base + int(starts[i]), base + int(ends[i]), 0, row))
    steps["end"] += base
    if extra_steps:
        steps = np.sort(join_steps([steps, _step_records(extra_steps)]), order="end")
    records = np.array([event_record(start, end, 0, row) for start, end, _, row in events], EVENT_DTYPE)
    if len(records):
        records["steps"] = np.searchsorted(steps["end"], records["start"], side="right")
    return Scanned(steps, records, rows, base + complete, int(skipped))


def _fast_steps(data: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                is_step: np.ndarray) -> np.ndarray | None:
    """Records of the step lines (ends relative to `data`), or None when one is not in logrows' layout."""
    count = int(is_step.sum())
    if count == 0:
        return np.empty(0, STEP_DTYPE)
    first = int(np.argmax(is_step))
    extras = _extra_keys(data[starts[first]:ends[first]])
    if extras is None:
        return None
    keys = _STEP_KEYS + tuple(b',"%s":' % name.encode() for name in extras)
    text = data if count == len(starts) else buf[np.repeat(is_step, ends - starts)].tobytes()
    if (any(text.count(key) != count for key in keys) or text.count(b"}\n") != count
            or text.count(b'":') != count * (_KEYS_IN_PREFIX + len(keys))):
        return None  # each line has each key once (json never repeats one) and no other
    if len(extras) and not _in_order(np.frombuffer(text, np.uint8), keys[len(_STEP_KEYS) - 1:]):
        return None
    # bytes.replace and numpy's text parser run in C: no Python object per row.
    text = text.replace(_STEP_PREFIX, b"")
    for key in keys:
        text = text.replace(key, b",")
    numbers = np.fromstring(text.replace(b"}\n", b",").replace(b"null", b"nan"), sep=",")
    width = len(STEP_DTYPE.names) - 1 + len(extras)
    if numbers.size != width * count:
        return None
    numbers = numbers.reshape(count, width)
    records = np.empty(count, step_dtype(extras))
    names = [n for n in records.dtype.names if n != "end"]
    for i, name in enumerate(names):
        records[name] = numbers[:, i]
    records["end"] = ends[is_step]
    return records


def _extra_keys(line: bytes) -> tuple[str, ...] | None:
    """The extra keys of a step line in logrows' layout, in order (None for another layout)."""
    row = logrows.decode_line(line)
    if row is None or tuple(row)[: len(FIXED_KEYS)] != FIXED_KEYS:
        return None
    extras = tuple(row)[len(FIXED_KEYS):]
    plain = all(name.isascii() and '"' not in name and "\\" not in name and name not in STEP_DTYPE.names
                for name in extras)  # "end" would name a second field of the record
    return extras if plain else None


def _in_order(buf: np.ndarray, keys: Sequence[bytes]) -> bool:
    """Whether the i-th occurrences of `keys` come in this order, for every i (each occurs once a line)."""
    previous = None
    starts = np.flatnonzero(buf[:-2] == ord(","))  # every key starts ',"': find those once
    starts = starts[buf[starts + 1] == ord('"')]
    for key in keys:
        found = starts[starts <= len(buf) - len(key)]
        for k in range(2, len(key)):
            found = found[buf[found + k] == key[k]]
        if previous is not None and (len(found) != len(previous) or not np.all(found > previous)):
            return False
        previous = found
    return True


def _step_records(rows: list[tuple[dict[str, Any], int]]) -> np.ndarray:
    """Records of decoded step rows, each with where it ends, and every extra value any of them has."""
    extras = union(*([k for k in row if k not in STEP_DTYPE.names and k != "kind"] for row, _ in rows))

    def number(row: dict[str, Any], key: str, default: float = float("nan")) -> float:
        value = row.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default

    return np.array([(int(number(row, "step", 0)), int(number(row, "epoch", 0)), int(number(row, "epoch_step", 0)),
                      number(row, "loss"), number(row, "lr", 0.0), number(row, "elapsed", 0.0),
                      number(row, "samples_per_s", 0.0), number(row, "wall", 0.0), end,
                      *(number(row, name) for name in extras)) for row, end in rows], step_dtype(extras))


def scan_file(path: Path, start: int, stop: int, chunk: int = 16 << 20) -> Scanned:
    """`scan` over [start, stop) of a file, read `chunk` bytes at a time (records are joined at the end)."""
    steps, events, rows = [], [], []
    offset, before, skipped = start, 0, 0
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
            skipped += part.skipped
            offset = part.end
    return Scanned(join_steps(steps),
                   np.concatenate(events) if events else np.empty(0, EVENT_DTYPE), rows, offset, skipped)


# ----------------------------------------------------------------------------- writing


def _prepare(path: Path, header: bytes, itemsize: int, keep: int) -> None:
    """Cut a binary log to its header and first `keep` records (started afresh when its header differs)."""
    with open(path, "r+b" if path.exists() else "w+b") as fh:
        if fh.read(len(header)) != header:
            fh.seek(0)
            fh.truncate()
            fh.write(header)
            keep = 0
        fh.truncate(len(header) + keep * itemsize)


class StepLogWriter:
    """Appends a run log's binary copy: step records to steps.bin, other rows' records to events.idx.

    Writes go through AppendFile, like the JSONL's: a write that fails (a full disk) leaves no part of a
    record behind and is made again by the next flush, so records never shift out of line.
    `extras` names the step rows' extra columns; a steps.bin with other columns is started afresh.
    """

    def __init__(self, run_dir: Path, steps: int = 0, events: int = 0, extras: Sequence[str] = ()):
        """Open both files cut to `steps` and `events` records (0 and 0 start them afresh)."""
        run_dir = Path(run_dir)
        self.extras = tuple(extras)
        self.dtype = step_dtype(self.extras)
        header = steps_header(self.extras)
        _prepare(run_dir / STEPS_BIN, header, self.dtype.itemsize, steps)
        _prepare(run_dir / EVENTS_IDX, HEADER.pack(EVENT_MAGIC, VERSION, EVENT_DTYPE.itemsize), EVENT_DTYPE.itemsize,
                 events)
        self.steps_file = AppendFile(run_dir / STEPS_BIN)
        self.events_file = AppendFile(run_dir / EVENTS_IDX)
        self.steps = (self.steps_file.size - len(header)) // self.dtype.itemsize  # records added, written or not

    def add_steps(self, records: np.ndarray) -> None:
        """Queue step records (any extra columns: those of this file are kept, NaN where missing)."""
        if len(records):
            self.steps_file.add(np.ascontiguousarray(widen(records, self.extras)).tobytes())
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


def step_records(event: Any, rows: list[dict[str, Any]], ends: np.ndarray, extras: Sequence[str] = ()) -> np.ndarray:
    """The steps.bin records of one StepMetrics' rows, which end at `ends` in metrics.jsonl, with the `extras`
    columns (NaN for those the event lacks)."""
    records = np.empty(len(rows), step_dtype(extras))
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
    for name in extras:
        values = event.grad_norms if name == "grad_norm" else event.metrics.get(name, ())
        values = np.asarray(values, dtype=np.float64) if len(values) == len(rows) else np.full(len(rows), np.nan)
        records[name] = np.where(np.isfinite(values), values, np.nan)  # the JSONL writes null, read back as NaN
    return records
