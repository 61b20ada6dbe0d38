"""Samples for looking at: chosen images raw, after the training pipeline and after the evaluation pipeline.

Everything returned is plain numpy (H, W, C uint8) so a UI can draw it without knowing torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UnreadableImage
from .augment import Pipeline
from .sources import DataBundle, Split, decode_image, sample_path

ORDER_SEED = 0  # the browsing order is fixed so paging shows the same images whatever the run's seed


@dataclass(frozen=True)
class Skipped:
    """A sample that could not be shown: its index, file (when there is one) and why."""

    index: int
    path: str | None
    reason: str


@dataclass(frozen=True)
class Sample:
    """One image three ways, each H×W×C uint8 ready for display."""

    index: int
    label: int
    class_name: str
    raw: np.ndarray
    train: np.ndarray  # after the random (training) pipeline, denormalised
    eval: np.ndarray  # after the deterministic (evaluation) pipeline, denormalised


@dataclass(frozen=True)
class SampleSet:
    """The samples of one page, what was skipped, and the shapes and ranges around the pipeline."""

    split: str
    samples: tuple[Sample, ...]
    skipped: tuple[Skipped, ...] = ()
    raw_shape: tuple[int, ...] = ()  # empty when the files differ in size
    raw_dtype: str = ""
    raw_range: tuple[float, float] = (0.0, 0.0)
    input_shape: tuple[int, ...] = ()
    input_dtype: str = ""
    input_range: tuple[float, float] = (0.0, 0.0)  # of the normalised model input (training path)
    reroll: int = 0


def browse_order(n: int) -> torch.Tensor:
    """A fixed shuffle of 0..n-1, so a page mixes classes even when files are sorted by class."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(ORDER_SEED))


def page_indices(split: Split, page: int, per_page: int) -> list[int]:
    """Sample indices of page `page` (wrapping around) in the browsing order."""
    n = len(split)
    if n == 0:
        return []
    order = browse_order(n)
    start = (page * per_page) % n
    return [int(order[(start + i) % n]) for i in range(min(per_page, n))]


def raw_image(split: Split, index: int) -> torch.Tensor:
    """The stored uint8 C×H×W image; folder images at their file size (the pipeline resizes them)."""
    path = sample_path(split, index)
    if path is None:
        return split.image(index)
    folder = split.dataset
    while isinstance(folder, torch.utils.data.Subset):
        folder = folder.dataset
    return decode_image(path, folder.channels, [])  # type: ignore[union-attr]


def load_raw(split: Split, indices: list[int]) -> tuple[list[tuple[int, torch.Tensor]], list[Skipped]]:
    """Read the images at `indices`; unreadable files are skipped and named instead of failing."""
    images, skipped = [], []
    for index in indices:
        try:
            images.append((index, raw_image(split, index)))
        except UnreadableImage as exc:
            skipped.append(Skipped(index, exc.path or sample_path(split, index), str(exc)))
    return images, skipped


def to_display(x: torch.Tensor) -> np.ndarray:
    """A float N×C×H×W batch in [0, 1] (or a uint8 one) as N×H×W×C uint8, clamped."""
    if x.dtype != torch.uint8:
        x = (x.detach().float().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def run_pipeline(pipeline: Pipeline, raw: list[torch.Tensor], reroll: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, evaluation) model inputs for raw uint8 images; augmentation drawn from step `reroll`."""
    if len({tuple(r.shape) for r in raw}) == 1:
        batch = torch.stack(raw)
        return pipeline.train_batch(batch, reroll), pipeline.eval_batch(batch)
    # Folder images of different sizes: one image at a time, each with its own draw.
    train = [pipeline.train_batch(r[None], reroll * len(raw) + i) for i, r in enumerate(raw)]
    evals = [pipeline.eval_batch(r[None]) for r in raw]
    shapes = {tuple(t.shape) for t in train}
    if len(shapes) > 1:
        raise ValueError(f"the pipeline gives images of different sizes ({', '.join(map(str, sorted(shapes)))}); "
                         f"start it with Resize(size=N)")
    return torch.cat(train), torch.cat(evals)


def draw(bundle: DataBundle, pipeline: Pipeline, indices: list[int], *, split: str = "train",
         reroll: int = 0) -> SampleSet:
    """The images at `indices` of `split` raw and through `pipeline`; ValueError when the pipeline cannot run."""
    source = {"train": bundle.train, "val": bundle.val, "test": bundle.test}[split]
    if source is None:
        raise ValueError(f"the data set has no {split} split")
    loaded, skipped = load_raw(source, indices)
    if not loaded:
        return SampleSet(split, (), tuple(skipped), reroll=reroll)
    raw = [img for _, img in loaded]
    try:
        train_in, eval_in = run_pipeline(pipeline, raw, reroll)
    except RuntimeError as exc:  # a shape the pipeline or Normalize cannot take
        raise ValueError(f"the pipeline cannot run on {tuple(raw[0].shape)} images: {exc}") from None
    # What the model sees is normalised; denormalising shows it as an image again.
    train_px = to_display(pipeline.denormalize(train_in))
    eval_px = to_display(pipeline.denormalize(eval_in))
    names = bundle.class_names
    samples = []
    for i, (index, img) in enumerate(loaded):
        label = int(source.labels[index])
        name = names[label] if 0 <= label < len(names) else str(label)
        samples.append(Sample(index, label, name, to_display(img[None])[0], train_px[i], eval_px[i]))
    stacked = [r.float() for r in raw]
    return SampleSet(
        split=split,
        samples=tuple(samples),
        skipped=tuple(skipped),
        raw_shape=tuple(raw[0].shape) if len({r.shape for r in raw}) == 1 else (),
        raw_dtype=str(raw[0].dtype).removeprefix("torch."),
        raw_range=(min(float(r.min()) for r in stacked), max(float(r.max()) for r in stacked)),
        input_shape=tuple(train_in.shape[1:]),
        input_dtype=str(train_in.dtype).removeprefix("torch."),
        input_range=(float(train_in.min()), float(train_in.max())),
        reroll=reroll,
    )
