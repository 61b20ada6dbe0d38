"""A run's metric history read in bounded time and memory, however long the run: the run log's reader.

Step rows never become Python objects one by one: the step series come from steps.bin (read in
chunks), reduced to a number of buckets that each keep their lowest and highest point, so spikes survive;
the other rows come through events.idx; whatever the JSONL holds past that binary copy (the last rows of a
killed process, or the whole log of a run written before the copy existed) is parsed by steplog.scan.

    snapshot = load(run_dir, buckets=2000)           # step series reduced, the other events, the last step
    snapshot.series["loss"].x, snapshot.series["loss"].y   # also "grad_norm" and a task's metrics ("mae") when logged
    follower = Follower(run_dir, snapshot.end)        # each poll() returns the events written since
    cut = checkpoint_cut(run_dir, save_id, step)      # where a checkpoint was taken: what a resume keeps
    load(run_dir, cut=cut)                            # the history as it was then
    read_steps(run_dir, start, stop)                  # step rows [start, stop) at full resolution

Nothing here writes, and every function may run while another process appends to the log.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import logrows, steplog
from ..events import Event, StepMetrics

METRICS_JSONL = "metrics.jsonl"
DEFAULT_COLUMNS = ("loss", "lr", "samples_per_s")
CHUNK_ROWS = 1 << 16  # step records reduced at a time: 4 MB, whatever the run's length
POLL_BYTES = 8 << 20  # the most a Follower parses per poll; the rest waits for the next one


@dataclass(frozen=True)
class Reduced:
    """One column of the step rows reduced to buckets: each bucket's lowest and highest point, in step order."""

    x: np.ndarray  # step of each point (float64, ascending)
    y: np.ndarray  # the column's value there (float64; NaN where a loss was not finite)
    sums: np.ndarray  # each point's share of its bucket's sum of finite values (the value itself when bucket is 1)
    counts: np.ndarray  # each point's share of its bucket's count of finite values
    bucket: int  # step rows per bucket (1: every row is a point)

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Snapshot:
    """What a run's log held when it was read: its step series reduced, its other events, where it ended."""

    series: dict[str, Reduced]  # by column: "loss", "lr", "samples_per_s", then extra values ("grad_norm", "mae")
    events: list[Event]  # every non-step row as its event, in log order
    steps: int  # step rows read
    last: StepMetrics | None  # the last step row, for status lines
    end: int  # bytes of metrics.jsonl read (complete rows only): a Follower goes on from here
    skipped: int = 0  # lines of metrics.jsonl parsed here that were not rows (garbled) and were left out


@dataclass(frozen=True)
class Cut:
    """A place in a run's log: its size in metrics.jsonl bytes, step rows, other rows and metrics.csv data lines."""

    jsonl: int
    steps: int
    events: int
    csv_lines: int  # lines after the header


def load(run_dir: Path | str, buckets: int = 2000, columns: Sequence[str] | None = None,
         cut: Cut | None = None) -> Snapshot:
    """Read a run's history (up to `cut`), each step column reduced to about `buckets` buckets.

    `columns` None reduces DEFAULT_COLUMNS and every extra value the step rows carry.

    Time is one pass over the binary copy (about 64 bytes a step) and memory a few chunks of it plus the
    result, about 4 points per bucket and column.
    """
    log = LogRecords(run_dir, cut)
    columns = (*DEFAULT_COLUMNS, *log.extras) if columns is None else columns
    series = _reduce(log.step_chunks(), log.step_count, buckets, columns)
    last = log.last_step()
    return Snapshot(series=series, events=log.events(), steps=log.step_count,
                    last=_step_event(last) if last is not None else None, end=log.end, skipped=log.skipped)


def read_steps(run_dir: Path | str, start: int = 0, stop: int | None = None, cut: Cut | None = None) -> np.ndarray:
    """Step rows [start, stop) at full resolution, as records of steplog.step_dtype(extra values) (a copy)."""
    log = LogRecords(run_dir, cut)
    stop = log.step_count if stop is None else min(stop, log.step_count)
    return log.steps_between(max(0, start), stop)


def events(run_dir: Path | str, cut: Cut | None = None) -> list[Event]:
    """Every non-step row of a run's log (up to `cut`) as its event, in order."""
    return LogRecords(run_dir, cut).events()


def checkpoint_cut(run_dir: Path | str, save_id: str, step: int) -> Cut:
    """Where a checkpoint was taken: just after its own "checkpoint" row (the last one with its save_id).

    Without that row (the process died between writing the file and logging it), the log is kept up to the
    first row that belongs after the checkpoint: a step past `step`, another row from past it, or the end
    of a run ("finished", "failed": a save that failed leaves such a row, and a resume goes on from before it).
    """
    return LogRecords(run_dir).checkpoint_cut(save_id, step)


class Follower:
    """Reads the rows a run appends to its log from an offset on; each poll() returns their events (never blocks).

    A log cut back under it (a resume) sets `cut_back` and returns nothing more: read it again with load().
    """

    def __init__(self, run_dir: Path | str, offset: int = 0):
        self.path = Path(run_dir) / METRICS_JSONL
        self.offset = offset
        self.inode: int | None = None
        self.cut_back = False
        self.skipped = 0  # lines read so far that were not rows (garbled)

    def poll(self) -> list[Event]:
        """Events of the complete rows written since the last poll (the first poll reads from the offset)."""
        if self.cut_back:
            return []
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return []
        if info.st_size < self.offset or (self.inode is not None and info.st_ino != self.inode):
            self.cut_back = True
            return []
        self.inode = info.st_ino
        if info.st_size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(min(POLL_BYTES, info.st_size - self.offset))
        scanned = steplog.scan(data, self.offset)
        if scanned.end == self.offset and len(data) == POLL_BYTES:  # one line longer than a poll: read it whole
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                scanned = steplog.scan(fh.read(info.st_size - self.offset), self.offset)
        self.offset = scanned.end
        self.skipped += scanned.skipped
        return events_in_order(scanned.steps, scanned.events, scanned.rows)


def events_in_order(steps: np.ndarray, records: np.ndarray, rows: list[dict[str, Any]]) -> list[Event]:
    """Events in log order: each stretch of step rows of one epoch between other rows becomes one StepMetrics."""
    out: list[Event] = []
    done = 0
    for record, row in zip([*records, None], [*rows, None]):
        upto = len(steps) if record is None else int(record["steps"])
        if upto > done:
            block = steps[done:upto]
            breaks = np.flatnonzero(np.diff(block["epoch"])) + 1
            for part in np.split(block, breaks):
                out.append(_step_event(part))
            done = upto
        if row is not None:
            event = logrows.event_of(row)
            if event is not None:
                out.append(event)
    return out


# ----------------------------------------------------------------------------- the log as records


class LogRecords:
    """The records of a run's log up to a cut: its binary copy, and the parsed JSONL rows past the copy.

    A file cut shorter while it is read (a resume) ends what is read early; it never crashes the reader.

    The storage package's own view (the run log cuts itself back with it); other readers use the functions above.
    """

    def __init__(self, run_dir: Path | str, cut: Cut | None = None):
        self.run_dir = Path(run_dir)
        self.jsonl = self.run_dir / METRICS_JSONL
        try:
            size = os.path.getsize(self.jsonl)
        except OSError:
            size = 0
        if cut is not None:
            size = min(size, cut.jsonl)
        steps = steplog.read_steps_file(self.run_dir / steplog.STEPS_BIN)
        index = steplog.read_records(self.run_dir / steplog.EVENTS_IDX, steplog.EVENT_DTYPE, steplog.EVENT_MAGIC)
        if steps is None or index is None or steplog.lacks_extras(steps, self.jsonl):
            # A log written before the copy existed, or before the copy held extra values: parse it all.
            steps = steplog.RecordFile(self.run_dir / steplog.STEPS_BIN, steplog.STEP_DTYPE, 0)
            idx = np.empty(0, steplog.EVENT_DTYPE)
        else:
            idx = index[:]
        # Records past the JSONL's size belong to rows a cut removed (or that never reached it).
        n_steps = bisect.bisect_right(range(len(steps)), size, key=lambda i: int(steps[i]["end"]))
        idx = idx[: int(np.searchsorted(idx["end"], size, side="right"))]
        idx = idx[idx["steps"] <= n_steps]  # rows after a step the copy lacks are read again from the JSONL
        self.binary_steps = steps.head(n_steps)
        covered = max(int(steps[n_steps - 1]["end"]) if n_steps else 0, int(idx["end"][-1]) if len(idx) else 0)
        tail = steplog.scan_file(self.jsonl, covered, size) if size > covered else None
        self.tail_steps = tail.steps if tail is not None else np.empty(0, steplog.STEP_DTYPE)
        if tail is not None:
            tail.events["steps"] += n_steps
        self.event_records = np.concatenate([idx, tail.events]) if tail is not None else idx
        self.binary_events = len(idx)
        self._tail_rows = tail.rows if tail is not None else []
        self.end = tail.end if tail is not None else covered
        self.skipped = tail.skipped if tail is not None else 0
        self.step_count = n_steps + len(self.tail_steps)
        # The extra values' columns (grad norm, a task's metrics) of either part; rows without one read NaN.
        self.extras = steplog.union(steplog.extras_of(steps.dtype), steplog.extras_of(self.tail_steps))

    # Step records: the binary copy, then the parsed tail, read a chunk at a time, all with every extra column.

    def step_chunks(self) -> Iterator[np.ndarray]:
        """Every step record, in chunks of at most CHUNK_ROWS."""
        for start in range(0, len(self.binary_steps), CHUNK_ROWS):
            chunk = self.binary_steps[start: start + CHUNK_ROWS]
            if not len(chunk):
                return  # the file was cut shorter under us: what is left would not follow on
            yield steplog.widen(chunk, self.extras)
        for start in range(0, len(self.tail_steps), CHUNK_ROWS):
            yield steplog.widen(self.tail_steps[start: start + CHUNK_ROWS], self.extras)

    def steps_between(self, start: int, stop: int) -> np.ndarray:
        """Step records [start, stop), copied out of the files."""
        n = len(self.binary_steps)
        parts = [self.binary_steps[min(start, n): min(stop, n)],
                 self.tail_steps[max(0, start - n): max(0, stop - n)]]
        return np.concatenate([steplog.widen(part, self.extras) for part in parts])

    def step_at(self, i: int) -> np.void:
        """Step record i."""
        n = len(self.binary_steps)
        return self.binary_steps[i] if i < n else self.tail_steps[i - n]

    def last_step(self) -> np.ndarray | None:
        """The last step record (as a one-record array), or None."""
        return self.steps_between(self.step_count - 1, self.step_count) if self.step_count else None

    def first_step_after(self, step: int) -> int | None:
        """Index of the first step row whose step is past `step`."""
        offset = 0
        for chunk in self.step_chunks():
            later = np.flatnonzero(chunk["step"] > step)
            if len(later):
                return offset + int(later[0])
            offset += len(chunk)
        return None

    def step_start(self, i: int) -> int:
        """Where step row i starts in metrics.jsonl: where the row before it, of either kind, ends."""
        before = int(self.step_at(i - 1)["end"]) if i > 0 else 0
        idx = self.event_records
        previous = np.flatnonzero(idx["steps"] <= i)
        if len(previous):
            before = max(before, int(idx["end"][previous[-1]]))
        return before

    # Other rows.

    def event_row(self, i: int) -> dict[str, Any]:
        """The decoded row of event record i ({} when it cannot be read)."""
        if i >= self.binary_events:
            return self._tail_rows[i - self.binary_events]
        start, end = int(self.event_records["start"][i]), int(self.event_records["end"][i])
        with open(self.jsonl, "rb") as fh:
            fh.seek(start)
            return logrows.decode_line(fh.read(end - start)) or {}

    def events(self) -> list[Event]:
        """Every event record's event, in order."""
        rows = self._binary_rows() + self._tail_rows
        return [e for e in map(logrows.event_of, rows) if e is not None]

    def _binary_rows(self) -> list[dict[str, Any]]:
        rows = []
        records = self.event_records[: self.binary_events]
        if not len(records):
            return rows
        with open(self.jsonl, "rb") as fh:
            for start, end in zip(records["start"].tolist(), records["end"].tolist()):
                fh.seek(start)
                rows.append(logrows.decode_line(fh.read(end - start)) or {})
        return rows

    # Cuts.

    def checkpoint_cut(self, save_id: str, step: int) -> Cut:
        """See checkpoint_cut()."""
        idx = self.event_records
        if save_id:
            for i in np.flatnonzero(idx["kind"] == steplog.KIND["checkpoint"])[::-1]:
                if self.event_row(int(i)).get("save_id") == save_id:
                    return self.cut_after_event(int(i))
        late = np.isin(idx["kind"], steplog.TERMINAL_KINDS) | ((idx["step"] != steplog.NO_STEP) & (idx["step"] > step))
        positions = [int(idx["start"][int(np.argmax(late))])] if late.any() else []
        first_step = self.first_step_after(step)
        if first_step is not None:
            positions.append(self.step_start(first_step))
        return self.cut_at(min(positions, default=self.end))

    def cut_after_event(self, i: int) -> Cut:
        """The cut just after event record i."""
        idx = self.event_records
        steps = int(idx["steps"][i])
        return Cut(jsonl=int(idx["end"][i]), steps=steps, events=i + 1,
                   csv_lines=steps + int(idx["csv"][: i + 1].sum()))

    def cut_at(self, position: int) -> Cut:
        """The cut at a row boundary `position` of metrics.jsonl."""
        idx = self.event_records
        events = int(np.searchsorted(idx["end"], position, side="right"))
        steps = bisect.bisect_right(range(self.step_count), position, key=lambda i: int(self.step_at(i)["end"]))
        return Cut(jsonl=position, steps=steps, events=events, csv_lines=steps + int(idx["csv"][:events].sum()))


def _step_event(records: np.ndarray) -> StepMetrics:
    """One StepMetrics for consecutive step records of one epoch (the last record's rate and time).

    An extra column is left out where none of these rows has a value (a run that logs it only from a resume on).
    """
    last = records[-1]
    extras = {name: records[name] for name in steplog.extras_of(records) if not np.isnan(records[name]).all()}
    norms = extras.pop("grad_norm", None)
    return StepMetrics(steps=tuple(records["step"].tolist()), losses=tuple(records["loss"].tolist()),
                       lrs=tuple(records["lr"].tolist()), epoch=int(last["epoch"]), epoch_step=int(last["epoch_step"]),
                       samples_per_s=float(last["samples_per_s"]), elapsed=float(last["elapsed"]),
                       metrics={name: tuple(values.tolist()) for name, values in extras.items()},
                       grad_norms=tuple(norms.tolist()) if norms is not None else ())


# ----------------------------------------------------------------------------- reduction


def _reduce(chunks: Iterator[np.ndarray], n: int, buckets: int, columns: Sequence[str]) -> dict[str, Reduced]:
    """Each column of `n` step records (arriving in chunks) reduced to at most `buckets` min/max buckets."""
    size = 1 if buckets <= 0 or n <= 2 * buckets else -(-n // buckets)
    parts: dict[str, list[tuple[np.ndarray, ...]]] = {c: [] for c in columns}
    carry: np.ndarray | None = None
    for chunk in chunks:
        block = chunk if carry is None else np.concatenate([carry, chunk])
        whole = len(block) - len(block) % size
        if whole:
            _reduce_block(block[:whole], size, columns, parts)
        carry = np.array(block[whole:]) if whole < len(block) else None
    if carry is not None:
        _reduce_block(carry, len(carry), columns, parts)
    out = {}
    for column in columns:
        pieces = parts[column]
        joined = [np.concatenate([p[k] for p in pieces]) if pieces else np.empty(0) for k in range(4)]
        out[column] = Reduced(*joined, bucket=size)
    return out


def _reduce_block(block: np.ndarray, size: int, columns: Sequence[str],
                  parts: dict[str, list[tuple[np.ndarray, ...]]]) -> None:
    """Reduce whole buckets of `size` records; a bucket of one record is that record."""
    k = len(block) // size
    x = block["step"].astype(np.float64).reshape(k, size)
    for column in columns:
        y = block[column].astype(np.float64).reshape(k, size)
        finite = np.isfinite(y)
        if size == 1:
            parts[column].append((x[:, 0], y[:, 0], np.where(finite, y, 0.0)[:, 0], finite[:, 0].astype(np.float64)))
            continue
        hi = np.where(finite, y, -np.inf).argmax(1)
        lo = np.where(finite, y, np.inf).argmin(1)
        pick = np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], 1)
        rows = np.arange(k)[:, None]
        share_sum = np.repeat(np.where(finite, y, 0.0).sum(1) / 2, 2)
        share_count = np.repeat(finite.sum(1) / 2, 2)
        parts[column].append((x[rows, pick].ravel(), y[rows, pick].ravel(), share_sum, share_count))
