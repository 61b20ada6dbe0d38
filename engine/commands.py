"""Commands a UI sends to a running loop; each takes effect at the next step boundary."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CommandBase:
    """Base of every command: a non-empty `ticket` asks the loop to report the outcome as CommandApplied."""

    ticket: str = field(default="", kw_only=True, compare=False, repr=False)


@dataclass(frozen=True)
class Pause(CommandBase):
    """Hold at the next step boundary until Resume or Stop."""


@dataclass(frozen=True)
class Resume(CommandBase):
    """Continue after Pause."""


@dataclass(frozen=True)
class Stop(CommandBase):
    """End the run at the next step boundary."""


@dataclass(frozen=True)
class SaveCheckpoint(CommandBase):
    """Write a checkpoint now."""

    reason: str = "manual"


@dataclass(frozen=True)
class EvaluateNow(CommandBase):
    """Evaluate on the test set now, mid-epoch if need be."""


@dataclass(frozen=True)
class SetLearningRate(CommandBase):
    """Set the optimizer's learning rate to an exact value."""

    lr: float


@dataclass(frozen=True)
class ScaleLearningRate(CommandBase):
    """Multiply the optimizer's learning rate by a factor (×2, ÷2 keys)."""

    factor: float


@dataclass(frozen=True)
class SetTrainable(CommandBase):
    """Freeze (trainable=False) or unfreeze every parameter under a module; "" names the whole model."""

    module: str
    trainable: bool


@dataclass(frozen=True)
class FindLr(CommandBase):
    """Sweep the learning rate exponentially from `start` to `end` over `steps` steps on a copy of the weights and
    optimizer (the run itself is left exactly as it was) and suggest one; answered by LrSwept events."""

    start: float = 1e-7
    end: float = 10.0
    steps: int = 100


@dataclass(frozen=True)
class Rollback(CommandBase):
    """Go back to the newest checkpoint in place; leave out the batches of the steps within `skip` of the spike
    (0: none) and set the learning rate to `lr` when given."""

    skip: int = 0
    lr: float | None = None


Command = (Pause | Resume | Stop | SaveCheckpoint | EvaluateNow | SetLearningRate | ScaleLearningRate
           | SetTrainable | FindLr | Rollback)


class Control:
    """The channel into a running loop: a command queue plus a stop flag any thread may set."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self.stop_requested = threading.Event()
        self.stop_reason = "stopped by request"

    def send(self, command: Command) -> None:
        """Queue a command; never blocks."""
        if isinstance(command, Stop):
            self.stop_requested.set()
        self._queue.put(command)

    def stop(self) -> None:
        """Ask the loop to end at the next step boundary."""
        self.send(Stop())

    def request_checkpoint_and_stop(self, reason: str = "stopped by request") -> None:
        """Save last.pt and end at the next step boundary; only sets a flag, so signal handlers may call it."""
        self.stop_reason = reason
        self.stop_requested.set()

    def pending(self) -> list[Command]:
        """Every queued command, without waiting."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def wait(self, timeout: float) -> Command | None:
        """The next command, waiting up to `timeout` seconds (used while paused)."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
