"""Optimizer and learning-rate schedule from the configuration, and live learning-rate changes."""

from __future__ import annotations

import torch
from torch import nn

from .config import OptimConfig, check_field


def build_optimizer(cfg: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer over every parameter; frozen ones get no gradient and are skipped by step()."""
    params = list(model.parameters())
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd-momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(cfg: OptimConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int):
    """(scheduler or None, whether it steps every batch rather than every epoch)."""
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma), False
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs), False
    if cfg.scheduler == "one-cycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr,
                                                   total_steps=max(1, epochs * steps_per_epoch)), True
    return None, False


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """Learning rate of the first parameter group (a host float: no device sync)."""
    return float(optimizer.param_groups[0]["lr"])


def set_lr(optimizer: torch.optim.Optimizer, scheduler, lr: float) -> float:
    """Set the learning rate now and rescale the schedule so it continues from the new value.

    ValueError when `lr` is outside what optim.lr allows: a live change is held to the configuration's rules.
    """
    why = check_field("optim.lr", lr)
    if why:
        raise ValueError(f"optim.lr {why}, got {lr:g}")
    factor = lr / current_lr(optimizer)
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
        for key in ("initial_lr", "max_lr", "min_lr"):
            if key in group:
                group[key] = group[key] * factor
    if scheduler is not None and hasattr(scheduler, "base_lrs"):
        scheduler.base_lrs = [b * factor for b in scheduler.base_lrs]
    if scheduler is not None and hasattr(scheduler, "_last_lr"):
        scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
    return current_lr(optimizer)
