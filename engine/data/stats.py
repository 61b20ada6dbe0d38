"""Numbers that describe a data set: sizes, class balance, per-channel mean and std, and one batch."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import UnreadableImage
from .augment import Pipeline
from .batches import Batches
from .samples import Skipped
from .sources import DataBundle, Split, sample_path

CHUNK = 2048  # images per exact-integer accumulation step of an in-memory split
PROGRESS_EVERY = 256  # images between progress reports when files are decoded one by one


@dataclass(frozen=True)
class SplitCounts:
    """How many images a split holds and how many of each class."""

    name: str
    size: int
    per_class: tuple[int, ...]


@dataclass(frozen=True)
class ChannelStats:
    """Per-channel mean and (population) standard deviation of pixel values scaled to [0, 1]."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    images: int
    pixels_per_channel: int
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class BatchSummary:
    """What one training batch looks like as the model receives it."""

    shape: tuple[int, ...]
    dtype: str
    device: str
    min: float
    max: float
    mean: float
    labels_shape: tuple[int, ...]


def class_counts(bundle: DataBundle) -> list[SplitCounts]:
    """Size and per-class counts of every split (train, val when held out, test)."""
    k = len(bundle.class_names)
    splits = [s for s in (bundle.train, bundle.val, bundle.test) if s is not None]
    return [SplitCounts(s.name, len(s), tuple(torch.bincount(s.labels, minlength=k)[:k].tolist())) for s in splits]


class Cancelled(Exception):
    """A long computation was asked to stop."""


def channel_stats(split: Split, progress: Callable[[int, int], None] | None = None,
                  cancel: threading.Event | None = None) -> ChannelStats:
    """Mean and std per channel over every pixel of `split`; unreadable files are skipped and named.

    Sums of uint8 values and of their squares are exact integers, so the result is exact up to the
    final float64 division, whatever the size of the split.
    """
    sums: list[int] | None = None
    squares: list[int] | None = None
    pixels = images = 0
    skipped: list[Skipped] = []

    def add(batch: torch.Tensor) -> None:
        nonlocal sums, squares, pixels, images
        wide = batch.to(torch.int64)
        s = wide.sum(dim=(0, 2, 3)).tolist()
        q = (wide * wide).sum(dim=(0, 2, 3)).tolist()
        sums = s if sums is None else [a + b for a, b in zip(sums, s)]
        squares = q if squares is None else [a + b for a, b in zip(squares, q)]
        pixels += batch.shape[0] * batch.shape[2] * batch.shape[3]
        images += batch.shape[0]

    n = len(split)
    if split.images is not None:
        for start in range(0, n, CHUNK):
            _check(cancel)
            add(split.images[start:start + CHUNK])
            if progress:
                progress(min(n, start + CHUNK), n)
    else:
        for i in range(n):
            if i % PROGRESS_EVERY == 0:
                _check(cancel)
                if progress:
                    progress(i, n)
            try:
                add(split.image(i)[None])
            except UnreadableImage as exc:
                skipped.append(Skipped(i, exc.path or sample_path(split, i), str(exc)))
        if progress:
            progress(n, n)
    if sums is None or squares is None or pixels == 0:
        raise ValueError(f"no readable images in the {split.name} split")
    mean = tuple(s / (pixels * 255) for s in sums)
    # n·Σx² − (Σx)² is an exact integer: no cancellation error in the variance.
    std = tuple(math.sqrt(pixels * q - s * s) / (pixels * 255) for s, q in zip(sums, squares))
    return ChannelStats(mean, std, images, pixels, tuple(skipped))


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


def batch_summary(bundle: DataBundle, pipeline: Pipeline, batch_size: int, device: torch.device,
                  seed: int = 0) -> BatchSummary:
    """The first training batch of epoch 0, through the training pipeline, on `device`."""
    batches = Batches(bundle.train, batch_size, device, shuffle=True, seed=seed, resident=False, workers=0)
    x, y = next(iter(batches.epoch(0)))
    inputs = pipeline.train_batch(x, 0)
    return BatchSummary(
        shape=tuple(inputs.shape),
        dtype=str(inputs.dtype).removeprefix("torch."),
        device=str(inputs.device),
        min=float(inputs.min()),
        max=float(inputs.max()),
        mean=float(inputs.float().mean()),
        labels_shape=tuple(y.shape),
    )
