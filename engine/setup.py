"""Turn a validated configuration into live objects: device, data, pipeline, model, optimizer.

`Setup` is the built-in image classification workload (workload.py); `build` makes it, or a user task's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import config as cfgmod
from .config import RunConfig
from .data import sources
from .data.augment import Pipeline
from .data.batches import Batches, collate
from .device import resolve_device
from .errors import ConfigError, DataUnavailable, FieldError, ModelError
from .evaluate import EvalResult, evaluate
from .fastpath import autocast, resolve_precision, use_channels_last
from .models.frozen import set_training_modes
from .models.registry import build_model, check_output, check_trainable, count_parameters, head_name
from .optim import build_optimizer, build_scheduler
from .probe import FEATURES_PIPELINE, FrozenBackbone
from .workload import DataShape, StepOutput

if TYPE_CHECKING:
    from .task import Task
    from .tasks.setup import TaskSetup


@dataclass
class Setup:
    """Everything the step loop works with."""

    config: RunConfig
    device: torch.device
    data: sources.DataBundle
    pipeline: Pipeline
    input_shape: tuple[int, int, int]
    num_classes: int
    model: nn.Module  # the eager model (compiled is the same modules behind torch.compile)
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    scheduler_per_step: bool
    scaler: torch.amp.GradScaler | None
    train: Batches
    val: Batches | None
    test: Batches
    precision: str = "fp32"  # train.precision with 'auto' resolved for this device and model
    probe: FrozenBackbone | None = None  # the model split at its head (fast paths on, head is the last step)
    compiled: nn.Module | None = None  # torch.compile(model) with train.compile, for passes through the whole model
    sample: torch.Tensor | None = None  # two model inputs from the test split, for the probe's checks
    # Speed paths for the parameters that require gradients now (choose_paths): with every parameter
    # before the head frozen, the backbone runs without autograd, and its features are cached when fixed.
    split: bool = False  # training runs the backbone under no_grad and the head with autograd
    cache_features: bool = False  # training batches are the backbone's cached features
    cache_eval: bool = False  # evaluation runs the head on the backbone's cached features
    route_changes: int = 0  # how often training batches switched between images and features

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        return autocast(self.precision, self.device)

    def train_mode(self) -> None:
        """Training mode for the step loop; frozen modules run in eval mode (models/frozen.py)."""
        set_training_modes(self.model)

    def choose_paths(self) -> None:
        """Pick the paths for the parameters that require gradients now; drop cached features gone stale."""
        probe = self.probe
        frozen = probe is not None and probe.backbone_frozen()
        fixed = frozen and self.config.train.cache_features and probe.is_fixed(self.sample)  # type: ignore[union-attr]
        if probe is not None and not fixed:
            probe.drop_cache()  # the backbone may train (or its buffers move): its features will change
        self.cache_eval = fixed
        self.cache_features = fixed and not self.pipeline.has_random  # random transforms: features differ per epoch
        # A compiled whole model beats the eager split; only cached features skip it.
        self.split = frozen and self.compiled is None

    def trainable_changed(self) -> None:
        """Follow a freeze or unfreeze applied at a step boundary: modes and paths; counts a batch switch."""
        cached = self.cache_features
        self.choose_paths()
        self.train_mode()
        if self.cache_features != cached:
            self.route_changes += 1  # the loop fetches the batch in hand again, as the new kind

    def train_batches(self) -> Batches:
        """What a training epoch iterates: image batches, or a frozen backbone's cached features."""
        features = self._features(self.train)
        if features is None:
            self.cache_features = False  # over the cache's budget: images it is
        return features or self.train

    def forward(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Logits for a batch from train_batches() at global `step` (call it under autocast())."""
        if self.cache_features:
            return self.probe.head(x)  # type: ignore[union-attr]
        inputs = self.pipeline.train_batch(x, step)
        if self.split:
            return self.probe.logits(inputs)  # type: ignore[union-attr]
        return (self.compiled or self.model)(inputs)

    def evaluate(self, batches: Batches) -> EvalResult:
        """Loss, accuracy and confusion over one split; leaves the model as it found it."""
        training = any(m.training for m in self.model.modules())
        features = self._features(batches)
        if features is not None:
            result = evaluate(self.probe.head, features, FEATURES_PIPELINE, self.num_classes,  # type: ignore[union-attr]
                              self.autocast())
        else:
            result = evaluate(self.compiled or self.model, batches, self.pipeline, self.num_classes, self.autocast())
        if training:
            self.train_mode()
        return result

    def _features(self, batches: Batches) -> Batches | None:
        wanted = self.cache_features if batches is self.train else self.cache_eval
        if not wanted or self.probe is None:
            return None
        return self.probe.cached(batches, self.pipeline, self.autocast())

    @property
    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable)."""
        return count_parameters(self.model)

    # ------------------------------------------------------------------------- the workload interface

    metric_names = ()  # class attributes, not dataclass fields: the image workload has no named metrics
    is_classification = True

    @property
    def batches_per_epoch(self) -> int:
        """Training batches per epoch."""
        return len(self.train)

    @property
    def splits(self) -> tuple[str, ...]:
        """The evaluation splits there are."""
        return ("val", "test") if self.val is not None else ("test",)

    def describe(self) -> DataShape:
        """Sizes and names for RunStarted."""
        d = self.data
        return DataShape(len(d.train), len(d.val) if d.val else 0, len(d.test), d.class_names, self.input_shape,
                         self.train.resident)

    def order(self, epoch: int) -> torch.Tensor:
        """Sample order of `epoch`."""
        return self.train.order(epoch)

    def epoch_batches(self, epoch: int, start: int, order: torch.Tensor | None) -> Iterator[Any]:
        """(uint8 images, labels) batches of `epoch` from batch `start`, or the probe's cached features."""
        return self.train_batches().epoch(epoch, start, order=order)

    def loss_and_metrics(self, batch: Any, step: int) -> StepOutput:
        """Cross-entropy of one batch and its count of right predictions."""
        x, y = batch
        logits = self.forward(x, step)
        loss = F.cross_entropy(logits, y)
        return StepOutput(loss, (), (logits.argmax(1) == y).sum(), y.shape[0])  # a shape: no sync

    def evaluate_split(self, split: str) -> EvalResult:
        """Evaluate "val" or "test"."""
        return self.evaluate(self.val if split == "val" else self.test)  # type: ignore[arg-type]

    def data_state(self) -> None:
        """In-memory and folder data sets need nothing beyond the sample order."""
        return None

    def unreadable_up_front(self) -> dict[str, str]:
        """Image files found unreadable while loading (data.bad_samples = skip replaces them)."""
        return self.data.unreadable

    def unreadable_sources(self) -> tuple[dict[str, str], ...]:
        """The growing path -> why records of files each split's batches replaced."""
        return tuple(b.unreadable for b in (self.train, self.val, self.test) if b is not None)

    def load_data_state(self, state: dict[str, Any] | None) -> None:
        """Nothing to restore."""


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so weights and anything else random repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_data(config: RunConfig, data: sources.DataBundle | None = None) -> tuple[sources.DataBundle, Pipeline]:
    """Load the data set (or take `data`) and its pipeline; ConfigError when the normalisation does not fit it."""
    d = config.data
    bundle = data if data is not None else sources.load(d, config.train.seed)
    if bundle.unreadable and d.bad_samples == "fail":
        files = list(bundle.unreadable.values())
        more = f" (and {len(files) - 3} more)" if len(files) > 3 else ""
        raise DataUnavailable(f"data.bad_samples is fail and {len(files)} image(s) are unreadable: "
                              f"{'; '.join(files[:3])}{more}; or set data.bad_samples = skip")
    channels = bundle.shape[0]
    if d.mean and len(d.mean) not in (1, channels):
        raise ConfigError([FieldError("data.mean", cfgmod.format_value(d.mean),
                                      f"{d.dataset} images have {channels} channel(s); give 1 or {channels} values")])
    return bundle, Pipeline(d.transforms, d.mean, d.std, seed=config.train.seed)


def check_num_classes(config: RunConfig, bundle: sources.DataBundle) -> None:
    """ConfigError when model.num_classes leaves some of the data's labels without an output."""
    wanted, classes = config.model.num_classes, len(bundle.class_names)
    if wanted and wanted < classes:
        raise ConfigError([FieldError("model.num_classes", wanted,
                                      f"{config.data.dataset} has {classes} classes (labels 0-{classes - 1}); "
                                      f"give at least {classes}, or 0 to take the data set's class count")])


def build(config: RunConfig, data: sources.DataBundle | None = None, task: Task | None = None) -> Setup | TaskSetup:
    """Validate `config` and build every object of the run (nothing is written to disk).

    `data` replaces loading `config.data.dataset` with splits the caller already holds in memory
    (benchmarks, notebooks); the configured pipeline and batch sizes still apply. A task (`task`, or the
    factory config.data.task names) builds its own workload instead.
    """
    if task is not None or config.data.task:
        from .tasks.setup import build_task

        return build_task(config, task)
    config = cfgmod.check(config).copy()  # the run records live changes (freezes) in its own copy
    device = resolve_device(config.train.device)
    if config.train.precision == "fp16" and device.type != "cuda":
        raise ConfigError([FieldError("train.precision", "fp16", f"fp16 needs CUDA, the device is {device.type}; "
                                      "use bf16 or fp32")])
    seed_everything(config.train.seed)
    bundle, pipeline = build_data(config, data)
    input_shape = pipeline.output_shape(bundle.shape)
    check_num_classes(config, bundle)
    num_classes = config.model.num_classes or len(bundle.class_names)
    model = build_model(config.model, input_shape, num_classes, allow_download=config.data.download)
    check_trainable(config.model, model)
    model.to(device)
    sample = pipeline.eval_batch(collate(sources.readable_items(bundle.test, 2))[0]).to(device)
    check_output(model, sample, num_classes)
    precision = resolve_precision(config.train.precision, device, model)
    fast = config.train.fast_paths
    if fast:
        use_channels_last(model, device)
    probe = split_at_head(model, sample) if fast else None
    compiled = torch.compile(model) if config.train.compile else None  # compiles on first use
    optimizer = build_optimizer(config.optim, model)
    d = config.data
    io = dict(resident=d.resident, workers=d.workers, skip_unreadable=d.bad_samples == "skip")
    train = Batches(bundle.train, d.batch_size, device, shuffle=True, seed=config.train.seed, **io)
    val = Batches(bundle.val, d.test_batch_size, device, shuffle=False, **io) if bundle.val is not None else None
    test = Batches(bundle.test, d.test_batch_size, device, shuffle=False, **io)
    steps_per_epoch = -(-len(train) // config.train.accumulate)  # optimizer steps: one per train.accumulate batches
    scheduler, per_step = build_scheduler(config.optim, optimizer, config.train.epochs, steps_per_epoch)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    setup = Setup(config, device, bundle, pipeline, input_shape, num_classes, model, optimizer, scheduler,
                  per_step, scaler, train, val, test, precision=precision, probe=probe, compiled=compiled,
                  sample=sample)
    setup.choose_paths()
    return setup


def split_at_head(model: nn.Module, sample: torch.Tensor) -> FrozenBackbone | None:
    """The model split at its head, or None when it has no Linear head or the head is not its last step."""
    try:
        probe = FrozenBackbone(model, head_name(model))
    except ModelError:
        return None
    return probe if probe.is_exact(sample) else None
