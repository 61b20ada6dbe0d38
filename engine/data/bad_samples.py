"""Unreadable image files: found up front when that is cheap, and replaced while training when skipped.

A run with data.bad_samples = "skip" replaces an image that does not decode by the next readable sample
of the same split (index + 1, + 2, ... wrapping around), label included. The replacement depends only on
the files, so batch shapes, every epoch's order, DataLoader workers and exact resume are as they would be;
the file is named once in a warning and counted. With "fail" the first unreadable file stops the run.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from ..errors import DataUnavailable, UnreadableImage

CHECK_LIMIT = 10_000  # folders up to this many files are checked up front (about 0.1 ms a file)

Note = tuple[str, str]  # (path, why it is unreadable)


def check_files(paths: list[str]) -> dict[str, str]:
    """Unreadable files among `paths` by their headers (and PNG checksums): path -> message; {} above CHECK_LIMIT."""
    if len(paths) > CHECK_LIMIT:
        return {}
    from PIL import Image, UnidentifiedImageError

    bad: dict[str, str] = {}
    for path in paths:
        try:
            with Image.open(path) as img:
                img.verify()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
            why = "unknown or damaged image data" if isinstance(exc, UnidentifiedImageError) else str(exc)
            bad[path] = f"{path} is not a readable image ({why or type(exc).__name__}); remove or replace that file"
    return bad


class Substituting(Dataset):
    """`dataset` whose unreadable items are replaced by the next readable one; items carry notes of what was."""

    def __init__(self, dataset: Dataset, split: str, skip: bool):
        self.dataset = dataset
        self.split = split
        self.skip = skip

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, tuple[Note, ...]]:
        notes: list[Note] = []
        n = len(self)
        for offset in range(n):
            try:
                image, label = self.dataset[(index + offset) % n]
            except UnreadableImage as exc:
                if not self.skip:
                    raise
                notes.append((exc.path or "", str(exc)))
                continue
            return image, label, tuple(notes)
        raise DataUnavailable(f"no image of the {self.split} split is readable (the first: {notes[0][1]})")

