"""The data pane's background work: plain functions run in thread workers that post their results as messages.

None of them touches a widget; each reports through `post` (the pane's thread-safe post_message).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from textual.message import Message

from ptviz.engine.config import RunConfig
from ptviz.engine.data import evaluation as eval_views
from ptviz.engine.data import samples as sample_views
from ptviz.engine.data import sources, stats
from ptviz.engine.data.augment import Pipeline
from ptviz.engine.device import resolve_device
from ptviz.engine.errors import UserError
from ptviz.engine.events import Evaluated

Post = Callable[[Message], object]


@dataclass
class Loaded(Message):
    """A data set finished loading, with the size and class counts of each split."""

    bundle: sources.DataBundle
    config: RunConfig
    counts: list[stats.SplitCounts]


@dataclass
class SamplesDrawn(Message):
    """A page of samples went through the pipeline."""

    generation: int
    sample_set: sample_views.SampleSet


@dataclass
class ChannelsComputed(Message):
    """Per-channel mean and std of the training images are known."""

    found: stats.ChannelStats


@dataclass
class Progress(Message):
    """A long computation got this far."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        """Only the latest progress matters."""
        return isinstance(message, Progress)


@dataclass
class BatchSummarised(Message):
    """The first training batch was built."""

    summary: stats.BatchSummary


@dataclass
class MistakesDrawn(Message):
    """The misclassified images of an evaluation were read."""

    event: Evaluated
    mistakes: list[eval_views.Mistake]
    skipped: list[sample_views.Skipped]


@dataclass
class Failed(Message):
    """A job met a problem the user can fix (missing or bad data, a pipeline that cannot run)."""

    job: str
    text: str


def load(post: Post, config: RunConfig) -> None:
    """Load the data set `config` names."""
    try:
        bundle = sources.load(config.data, config.train.seed)
    except UserError as exc:
        post(Failed("load", str(exc)))
        return
    loaded(post, bundle, config)


def loaded(post: Post, bundle: sources.DataBundle, config: RunConfig) -> None:
    """Count the classes of a loaded data set and hand both over.

    Counting is torch work, and torch work stays off the UI thread: a parallel torch operation there keeps
    an OpenMP thread team alive for good, and CPU training on the worker thread then runs ~2× slower.
    """
    post(Loaded(bundle, config, stats.class_counts(bundle)))


def draw_samples(post: Post, generation: int, bundle: sources.DataBundle, pipeline: Pipeline,
                 page: int, per_page: int, reroll: int) -> None:
    """Pass a page of training images through the pipeline."""
    try:
        indices = sample_views.page_indices(bundle.train, page, per_page)  # a shuffle: torch work, off the UI
        found = sample_views.draw(bundle, pipeline, indices, reroll=reroll)
    except (ValueError, UserError) as exc:
        post(Failed("samples", str(exc)))
        return
    post(SamplesDrawn(generation, found))


def summarise_batch(post: Post, bundle: sources.DataBundle, pipeline: Pipeline, config: RunConfig) -> None:
    """Build the first training batch on the configured device."""
    try:
        device = resolve_device(config.train.device)
        summary = stats.batch_summary(bundle, pipeline, config.data.batch_size, device, config.train.seed)
    except (ValueError, RuntimeError, UserError) as exc:
        post(Failed("batch", str(exc)))
        return
    post(BatchSummarised(summary))


def compute_channels(post: Post, split: sources.Split, cancel: threading.Event) -> None:
    """Per-channel mean and std over every training image, reporting progress; stops when `cancel` is set."""
    try:
        found = stats.channel_stats(split, lambda done, total: post(Progress(done, total)), cancel)
    except stats.Cancelled:
        return
    except ValueError as exc:
        post(Failed("channels", str(exc)))
        return
    post(ChannelsComputed(found))


def draw_mistakes(post: Post, event: Evaluated, bundle: sources.DataBundle, pipeline: Pipeline) -> None:
    """Read the misclassified images an evaluation lists."""
    try:
        found, skipped = eval_views.mistakes(event, bundle, pipeline)
    except (ValueError, RuntimeError) as exc:
        post(Failed("mistakes", str(exc)))
        return
    post(MistakesDrawn(event, found, skipped))
