"""Commands, stop requests and heartbeats between the ranks, so every rank does the same thing at the same step.

Only rank 0 hears commands (keys, `send`, its control socket). Every few steps, at a step boundary that is
the same on every rank, the ranks trade one small CPU row each through the gloo control group: rank 0's
count of command batches, whether to read the losses or write a periodic checkpoint now, and when to meet
next; every rank's stop request and heartbeat. The trade is started at one meeting and waited for at the
next, so it runs beside the steps and adds no wait to them. The commands themselves are JSON in the
key-value store torchrun runs; each rank applies the batches the trade announced, in order, at the meeting
where it learns of them: every rank at the same step.

While paused no collective is in flight: the ranks only poll the store, so a pause of any length never runs
into the process group's timeout (NCCL's watchdog included). Rank 0 publishes each command it gets while
paused and applies it at once; the others apply it as they find it, still at the same step.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

import torch

from ..commands import Command, Control, Stop
from ..events import RanksReported
from ..optim import current_lr
from .beat import Beat
from .group import Ranks, all_gather

if TYPE_CHECKING:
    from ..loop import Trainer

MEET_SECONDS = 0.05  # aim to meet about this often: commands take effect within a few hundredths of a second
MAX_INTERVAL = 1024  # steps between meetings at most, however fast the steps are
REPORT_SECONDS = 1.0  # rank 0 reports the ranks' heartbeats at most once a second
PAUSE_POLL_SECONDS = 0.1

# The row each rank contributes: what rank 0 decides, then what every rank tells about itself.
BATCHES, READ, SAVE, INTERVAL, STOP, STEP, STEP_SECONDS, DATA_WAIT, MEMORY, LR = range(10)
FIELDS = 10

_COMMAND_TYPES: dict[str, type] = {cls.__name__: cls for cls in Command.__args__}  # type: ignore[attr-defined]


def encode(command: Command) -> dict[str, Any]:
    """A command as JSON data (its ticket stays on rank 0, which answers it)."""
    fields = {f.name: getattr(command, f.name) for f in dataclasses.fields(command) if f.name != "ticket"}
    return {"type": type(command).__name__, **fields}


def decode(data: dict[str, Any]) -> Command:
    """The command `encode` wrote."""
    kind = _COMMAND_TYPES[data["type"]]
    return kind(**{k: v for k, v in data.items() if k != "type"})


class Exchange:
    """The meetings of one rank with the others (see the module docstring)."""

    def __init__(self, ranks: Ranks, control: Control, device: torch.device):
        self.ranks = ranks
        self.control = control  # rank 0: the commands it hears; every rank: its stop signals
        self.beat = Beat(device)
        self.mine = torch.zeros(FIELDS, dtype=torch.float64)
        self.agreed = torch.zeros(ranks.world * FIELDS, dtype=torch.float64)
        self.work: Any = None  # the trade in flight, started at the last meeting
        self.countdown = 0  # step boundaries until the next meeting
        self.interval = 1
        self.published = 0  # rank 0: command batches put in the store
        self.applied = 0  # batches this rank applied
        self.outbox: dict[int, list[Command]] = {}  # rank 0: its own command objects per batch (with tickets)
        self.stop_told = False
        self.stops_seen = 0  # rank 0: stop requests of other ranks it has acted on while paused
        self.read_due = False  # read the losses at the end of the next step (rank 0's clock said so)
        self.save_due = False  # output.checkpoint_minutes passed on rank 0's clock
        self.met_clock = time.perf_counter()
        self.met_boundaries = 0
        self.rows: list[list[float]] = [[0.0] * FIELDS for _ in range(ranks.world)]  # rank 0: last heard
        self.report_clock = 0.0
        self.pauses = 0  # pauses so far: keys of each pause's positions in the store

    # ------------------------------------------------------------------------- the loop's step boundary

    def boundary(self, trainer: Trainer) -> None:
        """The distributed form of the loop's step boundary: meet when due, apply what was agreed, pause."""
        trainer._check_batches()
        self.countdown -= 1
        self.met_boundaries += 1
        if self.countdown <= 0:
            agreed = self._finish()
            if agreed is not None:
                self._apply(trainer, agreed)
            self._hold_while_paused(trainer)
            if not trainer.stopping:
                self._start(trainer)
            self.countdown = self.interval
        if trainer.stopping and trainer.paused:
            trainer._tick()
            trainer.paused = False
        self.beat.restart()

    def finish(self) -> None:
        """Wait for the trade in flight (at the end of the run: every rank started it, so it completes)."""
        self._finish()

    # ------------------------------------------------------------------------- one meeting

    def _finish(self) -> torch.Tensor | None:
        if self.work is None:
            return None
        self.work.wait()
        self.work = None
        return self.agreed.view(self.ranks.world, FIELDS)

    def _apply(self, trainer: Trainer, agreed: torch.Tensor) -> None:
        rows = agreed.tolist()
        if self.ranks.leader:
            self.rows = rows
        lead = rows[0]
        for rank, row in enumerate(rows):
            if rank and row[STOP]:  # rank 0's own stop travels as a command, with its reason
                trainer._request_stop(self._stop_reason(rank))
        for number in range(self.applied + 1, int(lead[BATCHES]) + 1):
            self._apply_batch(trainer, number)
        self.read_due = self.read_due or bool(lead[READ])
        self.save_due = self.save_due or bool(lead[SAVE])
        self.interval = max(1, int(lead[INTERVAL]))

    def _start(self, trainer: Trainer) -> None:
        """Contribute this rank's row and start the trade; it completes while the next steps run."""
        m = self.mine
        m.zero_()
        now = time.perf_counter()
        if self.ranks.leader:
            pending = self.control.pending()
            stop = self.control.stop_requested.is_set() and not self.stop_told
            if pending or stop:
                self._publish(pending, stop)
            m[BATCHES] = self.published
            m[READ] = float(now - trainer.read_clock >= trainer.read_seconds)
            m[SAVE] = float(trainer.checkpoint_time_due(now))
            m[INTERVAL] = self._next_interval(now)
        elif self.control.stop_requested.is_set() and not self.stop_told:
            self._tell_stop()
            m[STOP] = 1.0
        step_seconds, data_wait, memory = self.beat.take()
        m[STEP], m[STEP_SECONDS], m[DATA_WAIT], m[MEMORY] = trainer.step, step_seconds, data_wait, memory
        m[LR] = current_lr(trainer.s.optimizer)
        self.work = all_gather(self.agreed, m, group=self.ranks.ctl, async_op=True)

    def _next_interval(self, now: float) -> int:
        """Steps until the next meeting: about MEET_SECONDS of rank 0's recent steps."""
        spent, boundaries = now - self.met_clock, max(1, self.met_boundaries)
        self.met_clock, self.met_boundaries = now, 0
        per_step = spent / boundaries
        return max(1, min(MAX_INTERVAL, int(MEET_SECONDS / per_step) if per_step > 0 else MAX_INTERVAL))

    # ------------------------------------------------------------------------- command batches

    def _publish(self, commands: list[Command], stop: bool) -> None:
        """Rank 0: put a batch in the store (its number travels in the next trade, or is polled while paused)."""
        entries = [encode(c) for c in commands]
        batch = list(commands)
        if stop:
            self.stop_told = True
            entries.append({"type": "Stop", "reason": self.control.stop_reason})
            batch.append(Stop())
        self.published += 1
        self.ranks.store.set(f"cmd/{self.published}", json.dumps(entries))
        self.outbox[self.published] = batch

    def _apply_batch(self, trainer: Trainer, number: int) -> None:
        if self.ranks.leader:
            batch = self.outbox.pop(number)
        else:
            entries = json.loads(self.ranks.store.get(f"cmd/{number}"))
            batch = []
            for entry in entries:
                if entry["type"] == "Stop" and "reason" in entry:
                    self.control.stop_reason = entry.pop("reason")
                batch.append(decode(entry))
        self.applied = number
        for command in batch:
            trainer._obey(command)

    # ------------------------------------------------------------------------- stop requests of other ranks

    def _tell_stop(self) -> None:
        """A rank other than 0 was asked to stop (a signal): leave the reason where every rank can read it."""
        self.stop_told = True
        self.ranks.store.set(f"stop/{self.ranks.rank}", f"rank {self.ranks.rank}: {self.control.stop_reason}")
        self.ranks.store.add("stops", 1)

    def _stop_reason(self, rank: int) -> str:
        return self.ranks.store.get(f"stop/{rank}").decode()

    # ------------------------------------------------------------------------- pausing

    def _hold_while_paused(self, trainer: Trainer) -> None:
        """Hold at this step until Resume or Stop, trading commands through the store only."""
        store = self.ranks.store
        if trainer.paused and not trainer.stopping:
            self.pauses += 1
        while trainer.paused and not trainer.stopping:
            self._tell_position(trainer)
            if self.ranks.leader:
                command = self.control.wait(PAUSE_POLL_SECONDS)
                pending = ([command] if command is not None else []) + self.control.pending()
                stop = self.control.stop_requested.is_set() and not self.stop_told
                others = int(store.add("stops", 0))
                if others > self.stops_seen:  # another rank got a stop signal while paused: stop everyone
                    self.stops_seen = others
                    told = [r for r in range(1, self.ranks.world) if store.check([f"stop/{r}"])]
                    self.control.stop_reason = self._stop_reason(told[0]) if told else "stopped by another rank"
                    stop, self.stop_told = True, False
                if pending or stop:
                    self._publish(pending, stop)
                    self._apply_batch(trainer, self.published)
            else:
                if self.control.stop_requested.is_set() and not self.stop_told:
                    self._tell_stop()
                if store.check([f"cmd/{self.applied + 1}"]):
                    self._apply_batch(trainer, self.applied + 1)
                else:
                    self.ranks.idle.wait(PAUSE_POLL_SECONDS)

    def _tell_position(self, trainer: Trainer) -> None:
        """While paused: each rank keeps its step and lr in the store; rank 0 reports them once a second."""
        row = [trainer.step, current_lr(trainer.s.optimizer)]
        self.ranks.store.set(f"held/{self.pauses}/{self.ranks.rank}", json.dumps(row))
        if not self.ranks.leader or time.perf_counter() - self.report_clock < REPORT_SECONDS:
            return
        keys = [f"held/{self.pauses}/{r}" for r in range(self.ranks.world)]
        self.ranks.wait_for(keys)  # every rank enters the pause at this boundary: they are all about to tell
        for rank, key in enumerate(keys):
            step, lr = json.loads(self.ranks.store.get(key))
            self.rows[rank][STEP], self.rows[rank][LR] = step, lr
            self.rows[rank][STEP_SECONDS] = self.rows[rank][DATA_WAIT] = 0.0  # nothing runs while paused
        if (report := self.report(trainer.step, force=True, paused=True)) is not None:
            trainer.emit(report)

    # ------------------------------------------------------------------------- heartbeats (rank 0)

    def report(self, step: int, force: bool = False, paused: bool = False) -> RanksReported | None:
        """Every rank's latest heartbeat, at most once per REPORT_SECONDS (rank 0 only)."""
        now = time.perf_counter()
        if not self.ranks.leader or (not force and now - self.report_clock < REPORT_SECONDS):
            return None
        self.report_clock = now
        hosts = self.ranks.hosts or [{} for _ in range(self.ranks.world)]
        rows = self.rows
        return RanksReported(
            step=step, hosts=tuple(str(h.get("host", "?")) for h in hosts),
            devices=tuple(str(h.get("device", "?")) for h in hosts),
            steps=tuple(int(r[STEP]) for r in rows), step_seconds=tuple(float(r[STEP_SECONDS]) for r in rows),
            data_wait=tuple(float(r[DATA_WAIT]) for r in rows), memory=tuple(int(r[MEMORY]) for r in rows),
            lrs=tuple(float(r[LR]) for r in rows), paused=paused,
        )
