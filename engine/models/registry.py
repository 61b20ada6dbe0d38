"""Build the configured model and find its classification head."""

from __future__ import annotations

import difflib

import torch
from torch import nn

from ..config import ModelConfig
from ..errors import ModelError
from .frozen import set_training_modes


def build_model(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int,
                allow_download: bool = False) -> nn.Module:
    """The model `cfg` names, for inputs of `input_shape` and `num_classes` outputs."""
    if cfg.name == "mnist-mlp":
        from . import mlp

        model = mlp.build(input_shape, num_classes)
    elif cfg.name == "cnn":
        from . import cnn

        model = cnn.build(input_shape, num_classes)
    elif cfg.name == "resnet18":
        from . import resnet

        model = resnet.build(input_shape, num_classes, pretrained=cfg.pretrained, allow_download=allow_download,
                             frozen_backbone=cfg.freeze_backbone)
    elif ":" in cfg.name:
        from . import user

        model = user.build(cfg.name, input_shape, num_classes)
    else:
        raise ModelError(f"model.name: unknown model {cfg.name!r}")
    if cfg.freeze_backbone:
        freeze_backbone(model)
    apply_freeze_edits(model, cfg.freeze)
    set_training_modes(model)  # what a training step will run: frozen modules in eval mode
    return model


def random_backbone_warning(cfg: ModelConfig, model: nn.Module) -> str | None:
    """Why `model`'s frozen backbone trains nothing useful: a built-in model not loaded from pretrained weights."""
    if not cfg.freeze_backbone or ":" in cfg.name:
        return None  # a user's factory may load its own weights
    head = head_name(model) + "."
    if any(p.requires_grad for name, p in model.named_parameters() if not name.startswith(head)):
        return None  # model.freeze thawed part of it: that part learns
    if cfg.name == "resnet18":
        if cfg.pretrained:
            return None
        return ("model.freeze_backbone: the frozen resnet18 backbone holds random weights (model.pretrained is "
                "off), so only the head learns, on random features; load ImageNet weights with --pretrained, "
                "or train the whole network from scratch with --no-pretrained --no-freeze-backbone")
    return (f"model.freeze_backbone: {cfg.name} has no pretrained weights, so its frozen backbone stays random "
            f"and only the head learns, on random features; train the whole network with --no-freeze-backbone")


def apply_freeze_edits(model: nn.Module, edits: list[str]) -> None:
    """Apply '-name' / '+name' edits in order; ModelError names an edit whose module does not exist."""
    for edit in edits:
        try:
            set_trainable(model, edit[1:], edit[0] == "+")
        except ModelError as exc:
            raise ModelError(f"model.freeze: {edit}: {exc}") from None


def freeze_edit(module: str, trainable: bool) -> str:
    """The model.freeze entry that records one freeze or unfreeze."""
    return ("+" if trainable else "-") + module


def with_freeze_edit(edits: list[str], module: str, trainable: bool) -> list[str]:
    """`edits` with one more freeze or unfreeze, less the earlier edits it overrides (those of `module` or inside
    it): applied in order they set the same parameters, and `-fc1, +fc1, -, +` reads `+`."""
    inside = [e for e in edits if not module or e[1:] == module or e[1:].startswith(module + ".")]
    return [e for e in edits if e not in inside] + [freeze_edit(module, trainable)]


def head_name(model: nn.Module) -> str:
    """Qualified name of the classification head: the last Linear layer."""
    name = next((n for n, m in reversed(list(model.named_modules())) if isinstance(m, nn.Linear)), None)
    if name is None:
        raise ModelError("model.freeze_backbone: the model has no Linear layer to keep trainable")
    return name


def freeze_backbone(model: nn.Module) -> None:
    """Freeze every parameter except the head's, as the tutorial does for fine-tuning."""
    head = head_name(model)
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith(head + ".")


def set_trainable(model: nn.Module, module: str, trainable: bool) -> tuple[int, int]:
    """Set requires_grad on every parameter under `module` ("" = the whole model); returns (total, trainable)."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper holds the real module tree
    try:
        target = model.get_submodule(module) if module else model
    except AttributeError:
        names = [name for name, _ in model.named_modules() if name]
        close = difflib.get_close_matches(module, names, n=1)
        owner = module.rpartition(".")[0]
        if module in dict(model.named_parameters()):
            hint = f" ({module!r} is a parameter; name its module, {owner!r})" if owner else " (that is a parameter)"
        elif close:
            hint = f" (did you mean {close[0]!r}?)"
        else:
            hint = f"; top-level modules: {_top_level(model)}"
        raise ModelError(f"the model has no module named {module!r}{hint}") from None
    for param in target.parameters():
        param.requires_grad_(trainable)
    return count_parameters(model)


def _top_level(model: nn.Module) -> str:
    names = [name for name, _ in model.named_children()]
    return ", ".join(names[:12]) + (", ..." if len(names) > 12 else "") if names else "none"


def check_trainable(cfg: ModelConfig, model: nn.Module) -> None:
    """ModelError when no parameter of `model` would train (a backward pass would have nothing to do)."""
    if any(p.requires_grad for p in model.parameters()):
        return
    if cfg.freeze:
        raise ModelError(f"model.freeze: {', '.join(cfg.freeze)} leaves no parameter trainable; "
                         f"unfreeze a module after it, e.g. +{_head_or_module(model)}")
    raise ModelError("model.name: no parameter of the model requires a gradient, so nothing would train")


def _head_or_module(model: nn.Module) -> str:
    try:
        return head_name(model)
    except ModelError:
        return next((name for name, _ in model.named_children()), "name")


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def check_output(model: nn.Module, sample: torch.Tensor, num_classes: int) -> None:
    """Run one sample through the model; ModelError explains a shape that does not fit."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(sample)
    except Exception as exc:  # noqa: BLE001 - user models may fail in any way; we report it
        raise ModelError(f"model.name: a batch of shape {tuple(sample.shape)} does not go through the model: "
                         f"{type(exc).__name__}: {exc}") from exc
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != num_classes:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelError(f"model.name: the model returns {shape} for a batch of {sample.shape[0]}; "
                         f"it must return logits of shape (batch, {num_classes})")
