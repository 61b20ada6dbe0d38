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
from .errors import ConfigError, FieldError
from .evaluate import EvalResult, evaluate
from .fastpath import autocast, resolve_precision, use_channels_last
from .models.registry import build_model, check_output, count_parameters, head_name
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
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    scheduler_per_step: bool
    scaler: torch.amp.GradScaler | None
    train: Batches
    val: Batches | None
    test: Batches
    precision: str = "fp32"  # train.precision with 'auto' resolved for this device and model
    probe: FrozenBackbone | None = None  # set when the backbone is frozen and the head is the last step
    cache_features: bool = False  # the probe's training features are computed once (no random transform)
    cache_eval: bool = False  # the probe's validation and test features are computed once

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        return autocast(self.precision, self.device)

    def train_mode(self) -> None:
        """Training mode for the step loop; a frozen backbone stays in eval mode."""
        self.model.train()
        if self.config.model.freeze_backbone:
            self._probe_or_split().train_mode()

    def train_batches(self) -> Batches:
        """What a training epoch iterates: image batches, or a frozen backbone's cached features."""
        return self._features(self.train) or self.train

    def forward(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Logits for a batch from train_batches() at global `step` (call it under autocast())."""
        if self._features(self.train) is not None:
            return self.probe.head(x)  # type: ignore[union-attr]
        inputs = self.pipeline.train_batch(x, step)
        if self.probe is not None:
            return self.probe.logits(inputs)
        return self.model(inputs)

    def evaluate(self, batches: Batches) -> EvalResult:
        """Loss, accuracy and confusion over one split; leaves the model as it found it."""
        training = any(m.training for m in self.model.modules())
        features = self._features(batches)
        if features is not None:
            result = evaluate(self.probe.head, features, FEATURES_PIPELINE, self.num_classes,  # type: ignore[union-attr]
                              self.autocast())
        else:
            result = evaluate(self.model, batches, self.pipeline, self.num_classes, self.autocast())
        if training:
            self.train_mode()
        return result

    def _features(self, batches: Batches) -> Batches | None:
        wanted = self.cache_features if batches is self.train else self.cache_eval
        if not wanted or self.probe is None:
            return None
        return self.probe.cached(batches, self.pipeline, self.autocast())

    def _probe_or_split(self) -> FrozenBackbone:
        if self.probe is not None:
            return self.probe
        model = getattr(self.model, "_orig_mod", self.model)
        return FrozenBackbone(model, head_name(model))

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
    model.to(device)
    first = [(bundle.test.image(i), 0) for i in range(min(2, len(bundle.test)))]
    sample = pipeline.eval_batch(collate(first)[0])
    check_output(model, sample.to(device), num_classes)
    precision = resolve_precision(config.train.precision, device, model)
    use_channels_last(model, device)
    probe = frozen_backbone(model, sample.to(device)) if config.model.freeze_backbone else None
    # Evaluation never augments, so its features always repeat; training's do without random transforms.
    cache_eval = bool(probe is not None and config.train.cache_features)
    cache = cache_eval and not pipeline.has_random
    if config.train.compile and not cache:  # with cached features only a linear layer is left to compile
        model = torch.compile(model)  # type: ignore[assignment]
        probe, cache_eval = None, False  # the compiled whole model replaces the eager split
    optimizer = build_optimizer(config.optim, model)
    d = config.data
    resident = d.resident
    train = Batches(bundle.train, d.batch_size, device, shuffle=True, seed=config.train.seed,
                    resident=resident, workers=d.workers)
    val = (Batches(bundle.val, d.test_batch_size, device, shuffle=False, resident=resident, workers=d.workers)
           if bundle.val is not None else None)
    test = Batches(bundle.test, d.test_batch_size, device, shuffle=False, resident=resident, workers=d.workers)
    scheduler, per_step = build_scheduler(config.optim, optimizer, config.train.epochs, len(train))
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return Setup(config, device, bundle, pipeline, input_shape, num_classes, model, optimizer, scheduler,
                 per_step, scaler, train, val, test, precision=precision, probe=probe, cache_features=cache,
                 cache_eval=cache_eval)


def frozen_backbone(model: nn.Module, sample: torch.Tensor) -> FrozenBackbone | None:
    """The model split at its head, or None when the head is not its last step (it then runs whole)."""
    probe = FrozenBackbone(model, head_name(model))
    return probe if probe.is_exact(sample) else None
