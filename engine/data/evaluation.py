"""Views of an evaluation over the data: per-class accuracy and the misclassified images themselves."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnreadableImage
from ..events import Evaluated
from .augment import Pipeline
from .samples import Skipped, raw_image, to_display
from .sources import DataBundle, sample_path


@dataclass(frozen=True)
class ClassAccuracy:
    """How one true class fared: its test images, how many were right, and that share."""

    name: str
    support: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        """correct / support, or None for a class with no images."""
        return self.correct / self.support if self.support else None


@dataclass(frozen=True)
class Mistake:
    """One misclassified image as the model saw it (evaluation pipeline, denormalised)."""

    index: int
    predicted: str
    true: str
    image: np.ndarray  # H×W×C uint8


def class_names_for(event: Evaluated, names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` padded with numbers when the model has more outputs than the data set has names."""
    k = len(event.confusion)
    return tuple(names[i] if i < len(names) else str(i) for i in range(k))


def per_class_accuracy(event: Evaluated, names: tuple[str, ...]) -> list[ClassAccuracy]:
    """One row per true class of the confusion matrix (rows are true classes, columns predictions)."""
    names = class_names_for(event, names)
    return [ClassAccuracy(names[i], sum(row), row[i]) for i, row in enumerate(event.confusion)]


def mistakes(event: Evaluated, bundle: DataBundle, pipeline: Pipeline) -> tuple[list[Mistake], list[Skipped]]:
    """The misclassified images `event` lists, read from its split and passed through the evaluation path."""
    split = {"train": bundle.train, "val": bundle.val, "test": bundle.test}.get(event.split)
    if split is None:
        raise ValueError(f"the data set has no {event.split} split to show mistakes from")
    names = class_names_for(event, bundle.class_names)
    out, skipped = [], []
    for index, predicted, true in event.wrong:
        if not 0 <= index < len(split):
            continue
        try:
            raw = raw_image(split, index)
        except UnreadableImage as exc:
            skipped.append(Skipped(index, exc.path or sample_path(split, index), str(exc)))
            continue
        shown = to_display(pipeline.denormalize(pipeline.eval_batch(raw[None])))[0]
        out.append(Mistake(index, names[predicted], names[true], shown))
    return out, skipped
