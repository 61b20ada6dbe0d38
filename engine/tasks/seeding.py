"""Per-sample randomness as a pure function of (seed, epoch, index), so augmentation repeats after a resume.

A Dataset may draw random numbers in __getitem__ (random crops, noise). Which numbers a sample gets would
otherwise depend on the DataLoader worker that fetched it and on everything that worker drew before, so a
run resumed mid-epoch, or one with another worker count, would see other augmentations. Each sample is
fetched with Python's, NumPy's and torch's CPU generators seeded from (seed, epoch, index), and the
generators are put back afterwards, so the training thread's own random stream (dropout) is untouched.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset

_MASK = (1 << 64) - 1
EVAL_EPOCH = -1  # evaluation and previews draw from their own stream, the same every time


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed mixed from the three numbers (splitmix64), the same in every process and Python."""
    x = (seed * 0x9E3779B97F4A7C15 + (epoch + 1) * 0xBF58476D1CE4E5B9 + (index + 1) * 0x94D049BB133111EB) & _MASK
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x = ((x ^ (x >> shift)) * mult) & _MASK
    return (x ^ (x >> 31)) >> 1


@contextmanager
def seeded(value: int) -> Iterator[None]:
    """Run the body with the CPU generators seeded to `value`, then give them their previous state back."""
    py, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.default_generator.manual_seed(value)  # not torch.manual_seed: that would reseed every CUDA device too
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class SeededSamples(Dataset):
    """A map-style dataset indexed by (epoch, index): each sample fetched under its own seed."""

    def __init__(self, dataset: Any, seed: int):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        with seeded(sample_seed(self.seed, epoch, index)):
            return self.dataset[index]


class SeededStream(IterableDataset):
    """An iterable dataset's epoch from position `start` on, each item drawn under the seed of its position.

    `skip` items are drawn and dropped first: a data set that cannot restore its position is re-iterated
    from the epoch's start and skipped forward.
    """

    def __init__(self, dataset: Any, seed: int, epoch: int, start: int = 0, skip: int = 0):
        self.dataset = dataset
        self.seed, self.epoch, self.start, self.skip = seed, epoch, start, skip

    def __iter__(self) -> Iterator[Any]:
        with seeded(sample_seed(self.seed, self.epoch, -1)):
            items = iter(self.dataset)
        position = self.start
        while True:
            with seeded(sample_seed(self.seed, self.epoch, position)):
                try:
                    item = next(items)
                except StopIteration:
                    return
            position += 1
            if position - self.start > self.skip:
                yield item
