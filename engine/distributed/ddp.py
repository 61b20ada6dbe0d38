"""The model behind DistributedDataParallel for training steps, rebuilt when a freeze changes what trains.

DDP registers the parameters that require gradients when it is built, and expects a gradient for each of
them every step. A freeze or unfreeze (applied on every rank at the same step boundary) therefore builds a
new wrapper there, rather than running every step with find_unused_parameters, which would search the
autograd graph on each backward pass. Building it broadcasts rank 0's weights and buffers: the ranks start
from identical models, and the rebuild is a collective every rank reaches at the same boundary.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .group import Ranks


def trainable(model: nn.Module) -> bool:
    """Whether any parameter requires a gradient (DDP refuses a model with none)."""
    return any(p.requires_grad for p in model.parameters())


def wrap(model: nn.Module, ranks: Ranks, compile_model: bool) -> nn.Module | None:
    """`model` behind DDP (compiled after wrapping, as DDP's documentation advises); None when nothing trains."""
    module = getattr(model, "_orig_mod", model)  # a compiled model: wrap the module itself
    if not trainable(module):
        return None
    device = next(module.parameters()).device
    ddp: nn.Module = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(ddp) if compile_model else ddp


def without_sync(ddp: nn.Module | None) -> AbstractContextManager[Any]:
    """Skip the gradient all-reduce of this backward pass (all but the last batch of an accumulated step)."""
    if ddp is None:
        return nullcontext()
    return getattr(ddp, "_orig_mod", ddp).no_sync()
