"""Per-sample randomness as a pure function of (seed, epoch, index), so augmentation repeats after a resume.

A Dataset may draw random numbers in __getitem__ (random crops, noise). Which numbers a sample gets would
otherwise depend on the DataLoader worker that fetched it and on everything that worker drew before, so a
run resumed mid-epoch, or one with another worker count, would see other augmentations. Each sample is
fetched with Python's, NumPy's and torch's CPU generators seeded from (seed, epoch, index), and the
generators are put back after each batch, so the training thread's own random stream (dropout) is untouched.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

_MASK = (1 << 64) - 1
EVAL_EPOCH = -1  # evaluation and previews draw from their own stream, the same every time


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed mixed from the three numbers (splitmix64), the same in every process and Python."""
    x = (seed * 0x9E3779B97F4A7C15 + (epoch + 1) * 0xBF58476D1CE4E5B9 + (index + 1) * 0x94D049BB133111EB) & _MASK
    for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        x = ((x ^ (x >> shift)) * mult) & _MASK
    return (x ^ (x >> 31)) >> 1


def reseed(value: int) -> None:
    """Seed Python's, NumPy's and torch's CPU generators (not CUDA's: the model's own stream stays as it is)."""
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.default_generator.manual_seed(value)  # not torch.manual_seed: that would reseed every CUDA device too


@contextmanager
def generators_kept() -> Iterator[None]:
    """Give the CPU generators their state from before the body back (a DataLoader worker has no need)."""
    if get_worker_info() is not None:
        yield
        return
    # Reading and writing these states costs ~0.3 ms: done once per batch, not once per sample.
    py, np_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class SeededSamples(Dataset):
    """A map-style dataset indexed by (epoch, index) keys: each sample fetched under its own seed."""

    def __init__(self, dataset: Any, seed: int):
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list[tuple[int, int]]) -> list[Any]:
        """A batch's samples (the DataLoader's batched fetch calls this with the keys of one batch)."""
        items = []
        with generators_kept():
            for epoch, index in keys:
                reseed(sample_seed(self.seed, epoch, index))
                items.append(self.dataset[index])
        return items


def seeded_chunks(dataset: Any, seed: int, epoch: int, size: int, start: int = 0, skip: int = 0
                  ) -> Iterator[list[Any]]:
    """An iterable dataset's epoch in lists of `size` items, each drawn under the seed of its position.

    Positions count from `start` (a data set that restored its own position); `skip` items are drawn and
    dropped first (one re-iterated from its epoch's start to reach the position).
    """
    with generators_kept():
        reseed(sample_seed(seed, epoch, -1))
        items = iter(dataset)
    position, exhausted = start, False
    while not exhausted:
        chunk: list[Any] = []
        with generators_kept():
            while len(chunk) < size:
                reseed(sample_seed(seed, epoch, position))
                try:
                    item = next(items)
                except StopIteration:
                    exhausted = True
                    break
                position += 1
                if skip:
                    skip -= 1
                else:
                    chunk.append(item)
        if chunk:
            yield chunk
