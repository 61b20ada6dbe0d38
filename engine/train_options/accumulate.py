"""Gradient accumulation: `every` batches add up to one optimizer step, weighted as one batch of all their samples.

A group is `every` batches from the last optimizer step; the last group of an epoch may be shorter, and the
epoch always ends with its step. The group's size need not be known in advance (a dataset without a length):
each batch's mean loss is weighted by its size relative to the group's first batch, and once the group is
complete its gradients are scaled by first batch size / group samples. That is the gradient of one batch of
all the group's samples, short batches included, and a group of one batch is left exactly as it was.
"""

from __future__ import annotations


class Accumulation:
    """Tracks the group of batches being accumulated."""

    def __init__(self, every: int):
        self.every = every
        self.done = 0  # batches of the open group already through backward
        self.samples = 0  # their samples
        self.first_samples = 0  # samples in the group's first batch: the unit the weights are measured in

    def steps_per_epoch(self, batches: int | None) -> int | None:
        """Optimizer steps in an epoch of `batches` batches (None when that is unknown)."""
        return None if batches is None else -(-batches // self.every)

    def steps_done(self, batch_in_epoch: int) -> int:
        """Optimizer steps taken in an epoch once `batch_in_epoch` of its batches went through."""
        return -(-batch_in_epoch // self.every)

    @property
    def open(self) -> bool:
        """Whether a group has batches that wait for their optimizer step."""
        return self.done > 0

    @property
    def full(self) -> bool:
        """Whether the open group has all its batches: time for the optimizer step."""
        return self.done >= self.every

    def weight(self, batch_samples: int) -> float | None:
        """Factor for the mean loss of the group's next batch; None for a factor of exactly 1."""
        if self.done == 0:
            self.first_samples = batch_samples
        factor = batch_samples / self.first_samples if self.first_samples else 1.0
        return None if factor == 1.0 else factor

    def added(self, batch_samples: int) -> None:
        """A batch of `batch_samples` went through backward."""
        self.done += 1
        self.samples += batch_samples

    def grad_factor(self) -> float | None:
        """Factor that turns the group's summed gradients into one big batch's; None for a group of one batch."""
        if self.done <= 1 or not self.samples:
            return None
        return self.first_samples / self.samples

    def stepped(self) -> None:
        """The optimizer step of the group was taken: the next batch opens a new group."""
        self.done = self.samples = self.first_samples = 0
