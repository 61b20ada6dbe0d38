"""Turn a validated configuration into live objects: device, data, pipeline, model, optimizer."""

from __future__ import annotations

import random
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import config as cfgmod
from .config import RunConfig
from .data import sources
from .data.augment import Pipeline
from .data.batches import Batches, collate
from .device import resolve_device
from .errors import ConfigError, FieldError
from .models.registry import build_model, check_output, count_parameters
from .optim import build_optimizer, build_scheduler


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

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        precision = self.config.train.precision
        if precision == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    @property
    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable)."""
        return count_parameters(self.model)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so weights and anything else random repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_data(config: RunConfig) -> tuple[sources.DataBundle, Pipeline]:
    """Load the data set and its pipeline; ConfigError when the normalisation does not fit it."""
    d = config.data
    bundle = sources.load(d, config.train.seed)
    channels = bundle.shape[0]
    if d.mean and len(d.mean) not in (1, channels):
        raise ConfigError([FieldError("data.mean", cfgmod.format_value(d.mean),
                                      f"{d.dataset} images have {channels} channel(s); give 1 or {channels} values")])
    return bundle, Pipeline(d.transforms, d.mean, d.std, seed=config.train.seed)


def build(config: RunConfig) -> Setup:
    """Validate `config` and build every object of the run (nothing is written to disk)."""
    config = cfgmod.check(config).copy()  # the run records live changes (freezes) in its own copy
    device = resolve_device(config.train.device)
    if config.train.precision == "fp16" and device.type != "cuda":
        raise ConfigError([FieldError("train.precision", "fp16", f"fp16 needs CUDA, the device is {device.type}; "
                                      "use bf16 or fp32")])
    seed_everything(config.train.seed)
    bundle, pipeline = build_data(config)
    input_shape = pipeline.output_shape(bundle.shape)
    num_classes = config.model.num_classes or len(bundle.class_names)
    model = build_model(config.model, input_shape, num_classes, allow_download=config.data.download)
    model.to(device)
    first = [(bundle.test.image(i), 0) for i in range(min(2, len(bundle.test)))]
    sample = pipeline.eval_batch(collate(first)[0])
    check_output(model, sample.to(device), num_classes)
    if config.train.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    optimizer = build_optimizer(config.optim, model)
    d = config.data
    resident = d.resident
    train = Batches(bundle.train, d.batch_size, device, shuffle=True, seed=config.train.seed,
                    resident=resident, workers=d.workers)
    val = (Batches(bundle.val, d.test_batch_size, device, shuffle=False, resident=resident, workers=d.workers)
           if bundle.val is not None else None)
    test = Batches(bundle.test, d.test_batch_size, device, shuffle=False, resident=resident, workers=d.workers)
    scheduler, per_step = build_scheduler(config.optim, optimizer, config.train.epochs, len(train))
    scaler = torch.amp.GradScaler("cuda") if config.train.precision == "fp16" else None
    return Setup(config, device, bundle, pipeline, input_shape, num_classes, model, optimizer, scheduler,
                 per_step, scaler, train, val, test)
