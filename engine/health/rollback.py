"""Rolling a live run back to its newest checkpoint in place, as resume would, without leaving the process.

The weights, optimizer, schedule, position, sample order, epoch totals and RNG come back from the checkpoint;
the logs are cut back to where it was taken (RunLog.rewind) and one "rollback" row says from which step to
which. The batches around the spike can be left out: a rollback replays the same batches in the same order,
and a batch that blew the loss up once may do it again.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from ..commands import Rollback
from ..config import check_field
from ..errors import CheckpointError
from ..events import LrChanged, Notice, RolledBack
from ..optim import set_lr
from ..storage import checkpoint as ckpt

if TYPE_CHECKING:
    from ..loop import Trainer

RECENT_STEPS = 4096  # steps whose batch positions are remembered (a spike is found within a read interval)


class Rewound(Exception):
    """Raised at the end of a step boundary after a rollback, so the epoch loop starts again from the checkpoint."""


class BatchSkips:
    """Which batches a rollback leaves out, and where the recent optimizer steps took their batches."""

    def __init__(self) -> None:
        self.skipped: set[tuple[int, int]] = set()  # (epoch, batch index in the epoch)
        self.recent: deque[tuple[int, int, int]] = deque(maxlen=RECENT_STEPS)  # (step, epoch, first batch)

    def skips(self, step: int, epoch: int, batch: int, group_open: bool) -> bool:
        """Whether to leave out the batch at (epoch, batch); otherwise remember where step `step` starts."""
        if self.skipped and (epoch, batch) in self.skipped:
            return True
        if not group_open:
            self.recent.append((step, epoch, batch))
        return False

    def around(self, center: int, radius: int, after: int, per_step: int) -> set[tuple[int, int]]:
        """The batch positions of the remembered steps within `radius` of `center` that came after step `after`."""
        starts = sorted(self.recent)
        out: set[tuple[int, int]] = set()
        for i, (step, epoch, batch) in enumerate(starts):
            if step <= after or abs(step - center) > radius:
                continue
            following = starts[i + 1] if i + 1 < len(starts) else None
            end = following[2] if following is not None and following[1] == epoch else batch + per_step
            out.update((epoch, b) for b in range(batch, max(end, batch + 1)))
        return out

    def state_dict(self) -> list[list[int]]:
        """The skipped positions, for checkpoints."""
        return [list(p) for p in sorted(self.skipped)]

    def load_state_dict(self, state: list[Any]) -> None:
        """Continue from state_dict()."""
        self.skipped = {(int(e), int(b)) for e, b in state}
        self.recent.clear()


def roll_back(trainer: Trainer, command: Rollback) -> None:
    """Apply a Rollback at a step boundary; a refusal leaves the run exactly as it was."""
    if trainer.run_dir is None:
        trainer._refuse("not rolled back: this run has no folder (output.runs_dir is empty), so no checkpoint")
        return
    if command.lr is not None and (why := check_field("optim.lr", command.lr)):
        trainer._refuse(f"not rolled back: the learning rate {command.lr:g}: optim.lr {why}")
        return
    try:
        state, path, _ = ckpt.load_newest(trainer.run_dir)
    except CheckpointError as exc:
        trainer._refuse(f"not rolled back: {exc}")
        return
    to_step, from_step = int(state["step"]), trainer.step
    if to_step > from_step:
        trainer._refuse(f"not rolled back: the newest checkpoint ({path.name}, step {to_step:,}) is ahead of the run")
        return
    spike = trainer.diverged_at
    skipped = set()
    if command.skip > 0:
        center = spike if spike is not None else from_step
        skipped = trainer.health.skips.around(center, command.skip, to_step, trainer.accum.every)
    kept_skips = set(trainer.health.skips.skipped)
    try:
        trainer.restore(state)
    except CheckpointError as exc:
        trainer._refuse(f"not rolled back: {exc}")
        return
    ckpt.set_rng_state(state["rng"])  # at once: the run goes on from this boundary, not from run()'s start
    trainer.rng_to_restore = None
    trainer.forget_unread()
    trainer.health.skips.skipped |= kept_skips | skipped
    lr = set_lr(trainer.s.optimizer, trainer.s.scheduler, command.lr) if command.lr is not None else None
    if trainer.rewind_log is not None:
        trainer.rewind_log(state)
    trainer.emit(RolledBack(from_step, to_step, int(state["epoch"]), path.name, spike,
                            tuple(sorted(skipped)), lr))
    if lr is not None:
        trainer.emit(LrChanged(trainer.step, lr))
    what = f"; {len(skipped)} batch(es) around step {center:,} will be left out" if skipped else ""
    rate = f"; learning rate {lr:g}" if lr is not None else ""
    trainer.emit(Notice("info", f"rolled back from step {from_step:,} to step {to_step:,} ({path.name}){what}{rate}"))
    trainer.rewound = True
