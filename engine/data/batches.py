"""Batch iteration: an epoch's order from (seed, epoch) and batches from memory or a DataLoader.

The order of epoch e is a pure function of (seed, e), so a run can restart at any batch of any
epoch and see exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import DataUnavailable
from .augment import to_device
from .bad_samples import Note, Substituting
from .sources import Split


class _TensorImages(Dataset):
    """An in-memory split seen one sample at a time (the plain, non-resident path)."""

    def __init__(self, split: Split):
        self.images, self.labels = split.images, split.labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])  # type: ignore[index]


def collate(items: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    shapes = {tuple(img.shape) for img, _ in items}
    if len(shapes) > 1:
        raise DataUnavailable(
            f"images in one batch have different sizes ({', '.join(str(s) for s in sorted(shapes))}); "
            f"start data.transforms with Resize(size=N) so every image has the same size"
        )
    return torch.stack([img for img, _ in items]), torch.tensor([lab for _, lab in items], dtype=torch.long)


def collate_noting(items: list[tuple[torch.Tensor, int, tuple[Note, ...]]]
                   ) -> tuple[torch.Tensor, torch.Tensor, tuple[Note, ...]]:
    """Collate Substituting items: images, labels and the notes of the files they replaced."""
    images, labels = collate([(image, label) for image, label, _ in items])
    return images, labels, tuple(note for _, _, notes in items for note in notes)


class Batches:
    """Batches of (uint8 images, labels) on `device` for one split."""

    def __init__(self, split: Split, batch_size: int, device: torch.device, *, shuffle: bool,
                 seed: int = 0, resident: bool = True, workers: int = 0, skip_unreadable: bool = False):
        self.split = split
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.seed = seed
        self.workers = workers
        self.resident = resident and split.images is not None
        self.unreadable: dict[str, str] = {}  # files replaced so far: path -> why (see bad_samples.py)
        if self.resident:
            # The whole split lives on the device as uint8: one gather per batch, no per-sample Python.
            self.images = split.images.to(device)  # type: ignore[union-attr]
            self.labels = split.labels.to(device)
        else:
            dataset = split.dataset if split.dataset is not None else _TensorImages(split)
            self.dataset = Substituting(dataset, split.name, skip_unreadable)

    def __len__(self) -> int:
        """Batches per epoch (the last one may be short)."""
        return -(-len(self.split) // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """Sample indices of epoch `epoch` in visiting order."""
        n = len(self.split)
        if not self.shuffle:
            return torch.arange(n)
        # Generators take seeds below 2**64; reducing modulo 2**64 leaves every seed that fit unchanged.
        seed = (self.seed * 100_003 + epoch) % 2**64
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))

    def epoch(self, epoch: int, start: int = 0, order: torch.Tensor | None = None
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of `epoch` (in `order` when given) from batch index `start` on."""
        order = (self.order(epoch) if order is None else order)[start * self.batch_size:]
        if self.resident:
            order = to_device(order, self.device)
            for i in range(0, order.shape[0], self.batch_size):
                idx = order[i:i + self.batch_size]
                yield self.images.index_select(0, idx), self.labels.index_select(0, idx)
            return
        pin = self.device.type == "cuda"
        loader = DataLoader(self.dataset, batch_size=self.batch_size, sampler=order.tolist(),
                            num_workers=self.workers, collate_fn=collate_noting, pin_memory=pin)
        try:
            for x, y, notes in loader:
                self.unreadable.update(notes)
                yield x.to(self.device, non_blocking=pin), y.to(self.device, non_blocking=pin)
        except DataUnavailable as exc:
            raise _unwrapped(exc) from None


def _unwrapped(exc: DataUnavailable) -> DataUnavailable:
    """The original one-line message of an error a DataLoader worker re-raised with its traceback."""
    text = str(exc)
    if not text.startswith("Caught "):
        return exc
    # The traceback ends with "ptviz.engine.errors.UnreadableImage: <the message>".
    last = [line for line in text.splitlines() if line.strip()][-1]
    _, sep, message = last.partition(": ")
    return type(exc)(message.strip() if sep else text)
