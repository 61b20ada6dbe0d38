"""Gradient accumulation: which batches of an epoch add up to one optimizer step, and how much each counts.

A group is `every` batches from the position of the last optimizer step (fewer at the end of an epoch, which
always ends with a step). Each batch's mean loss is weighted by its share of the group's samples, so the
summed gradient is the one a single batch of all those samples gives, short last batches included.
"""

from __future__ import annotations


class Accumulation:
    """Tracks the group of batches being accumulated."""

    def __init__(self, every: int):
        self.every = every
        self.size = 0  # batches in the current group
        self.samples = 0  # samples in the current group
        self.done = 0  # batches of the group already through backward

    def steps_per_epoch(self, batches: int) -> int:
        """Optimizer steps in an epoch of `batches` batches."""
        return -(-batches // self.every)

    def steps_done(self, batch_in_epoch: int) -> int:
        """Optimizer steps taken in an epoch once `batch_in_epoch` of its batches went through."""
        return -(-batch_in_epoch // self.every)

    @property
    def between_steps(self) -> bool:
        """Whether no group is open: the last optimizer step took every batch seen so far."""
        return self.size == 0

    @property
    def first(self) -> bool:
        """Whether the next batch is its group's first (its gradients start from zero)."""
        return self.done == 0

    @property
    def complete(self) -> bool:
        """Whether every batch of the open group went through backward: time for the optimizer step."""
        return self.done == self.size

    def begin(self, batch_in_epoch: int, batches: int, batch_size: int, samples: int) -> None:
        """Open the group starting at batch `batch_in_epoch` of an epoch of `batches` batches of `batch_size`
        (the last one short) out of `samples` samples."""
        self.size = min(self.every, batches - batch_in_epoch)
        end = min((batch_in_epoch + self.size) * batch_size, samples)
        self.samples = end - batch_in_epoch * batch_size
        self.done = 0

    def weight(self, batch_samples: int) -> float | None:
        """Factor for the mean loss of a batch of `batch_samples`; None when the group is that one batch."""
        if self.size == 1:
            return None  # a single batch keeps its loss as it is: bit-for-bit the step without accumulation
        return batch_samples / self.samples

    def added(self) -> None:
        """A batch of the group went through backward."""
        self.done += 1

    def stepped(self) -> None:
        """The optimizer step of the group was taken."""
        self.size = self.done = 0
