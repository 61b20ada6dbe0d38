"""What "frozen" means while training: a frozen module runs in eval mode, so it changes in no way.

A module is frozen when it holds parameters and none of them requires a gradient. During training it runs
in eval mode: its weights stay (no gradient), its BatchNorm layers use and keep their running statistics,
and dropout inside it is off, so its output is a fixed function of its input. Every other module runs in
training mode; a parameter-free module (ReLU, pooling, dropout) follows the module that holds it. The rule
looks only at requires_grad, so a freeze from model.freeze_backbone, model.freeze or a live key is the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


def is_frozen(module: nn.Module) -> bool:
    """Whether `module` holds parameters and none of them requires a gradient."""
    has_params = False
    for param in module.parameters():
        if param.requires_grad:
            return False
        has_params = True
    return has_params


def set_training_modes(model: nn.Module) -> None:
    """Training mode for the model, eval mode for each frozen subtree in it."""
    model.train()
    _freeze_modes(model)


def _freeze_modes(module: nn.Module) -> None:
    if is_frozen(module):
        module.eval()
        return
    for child in module.children():
        _freeze_modes(child)


@contextmanager
def kept_modes(model: nn.Module) -> Iterator[None]:
    """Restore every module's train/eval flag on exit (model.train(flag) would flatten them)."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training
