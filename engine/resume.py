"""Fitting a checkpoint to the run that continues it: the data it resumes on, and the optimizer flags given.

A resume continues exactly, or says why it cannot: a changed training split or batch size is fine at an
epoch boundary (with a notice) and refused mid-epoch; optimizer and schedule settings given to `resume`
are applied to the loaded optimizer state (never silently dropped) or refused where they cannot carry over.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import RunConfig
from .errors import CheckpointError, ConfigError, FieldError
from .optim import current_lr, set_lr

# Optimizer names built on the same torch class share a state layout, so a resume may switch between them.
OPTIMIZER_CLASS = {"sgd": "SGD", "sgd-momentum": "SGD", "adam": "Adam", "adamw": "AdamW"}


def check_position(state: dict[str, Any], train_size: int, batch_size: int) -> list[str]:
    """Notices for a checkpoint whose epoch can continue on this data; CheckpointError where it cannot."""
    saved_size = int(state["order"].numel())
    saved_batch = _saved(state, "data", "batch_size", batch_size)
    epoch, batch = int(state["epoch"]), int(state["batch_in_epoch"])
    if batch == 0:  # an epoch boundary: the next epoch's order is drawn for whatever the split holds now
        if saved_size != train_size:
            return [f"the training split has {train_size:,} samples, the checkpoint's run had {saved_size:,}: "
                    f"epoch {epoch + 1} starts with the new size"]
        return []
    where = f"mid-epoch (epoch {epoch + 1}, batch {batch})"
    if saved_size != train_size:
        raise CheckpointError(
            f"the training split has {train_size:,} samples, but the checkpoint was taken {where} over "
            f"{saved_size:,}: that epoch cannot continue exactly. Restore the data set as it was, or resume from "
            f"a checkpoint taken at an epoch boundary (--checkpoint epoch-NNNN.pt)")
    if saved_batch != batch_size:
        raise ConfigError([FieldError(
            "data.batch_size", batch_size,
            f"the checkpoint was taken {where} with batches of {saved_batch}; keep {saved_batch} to continue "
            f"that epoch exactly (a new batch size can start at an epoch boundary: --checkpoint epoch-NNNN.pt)")])
    return []


def check_optimizer(state: dict[str, Any], config: RunConfig) -> None:
    """ConfigError when the optimizer or schedule asked for cannot take over the checkpoint's state."""
    optim = config.optim
    saved_name = _saved(state, "optim", "optimizer", optim.optimizer)
    if OPTIMIZER_CLASS.get(saved_name) != OPTIMIZER_CLASS[optim.optimizer]:
        raise ConfigError([FieldError(
            "optim.optimizer", optim.optimizer,
            f"the checkpoint holds {saved_name} state, which {optim.optimizer} cannot continue from; resume with "
            f"--optimizer {saved_name}, or start a new run to change the optimizer")])
    saved_scheduler = _saved(state, "optim", "scheduler", optim.scheduler)
    if saved_scheduler != optim.scheduler:
        raise ConfigError([FieldError(
            "optim.scheduler", optim.scheduler,
            f"the checkpoint's schedule is {saved_scheduler} and a resume continues it; resume with "
            f"--scheduler {saved_scheduler}, or start a new run to change the schedule")])


def apply_optimizer_flags(state: dict[str, Any], config: RunConfig, optimizer: torch.optim.Optimizer,
                          scheduler: Any, steps_per_epoch: int) -> list[str]:
    """Put the settings that differ from the checkpoint's into the loaded optimizer and schedule.

    Call after loading both states. Returns one notice per change; a setting the loaded schedule cannot
    follow raises ConfigError. Unchanged settings are left alone, so live changes made before the
    checkpoint (a new learning rate) carry on.
    """
    optim, notices = config.optim, []
    saved = lambda name, now: _saved(state, "optim", name, now)  # noqa: E731 - a one-line lookup
    if optim.scheduler == "one-cycle":
        cycle = config.train.epochs * steps_per_epoch
        if getattr(scheduler, "total_steps", cycle) != cycle:
            raise ConfigError([FieldError(
                "train.epochs", config.train.epochs,
                f"the one-cycle schedule spans the run's {scheduler.total_steps:,} steps and cannot stretch to "
                f"{cycle:,}; a one-cycle run resumes with its epochs and data size unchanged")])
    old_momentum = saved("momentum", optim.momentum) if saved("optimizer", optim.optimizer) == "sgd-momentum" else 0.0
    new_momentum = optim.momentum if optim.optimizer == "sgd-momentum" else 0.0
    if isinstance(optimizer, torch.optim.SGD) and new_momentum != old_momentum:
        for group in optimizer.param_groups:
            group["momentum"] = new_momentum
        notices.append(f"optim.momentum {old_momentum:g} → {new_momentum:g}")
    if saved("weight_decay", optim.weight_decay) != optim.weight_decay:
        for group in optimizer.param_groups:
            group["weight_decay"] = optim.weight_decay
        notices.append(f"optim.weight_decay {saved('weight_decay', 0.0):g} → {optim.weight_decay:g}")
    if optim.scheduler == "step":
        for name in ("step_size", "gamma"):
            if saved(name, getattr(optim, name)) != getattr(optim, name):
                setattr(scheduler, name, getattr(optim, name))
                notices.append(f"optim.{name} {saved(name, 0):g} → {getattr(optim, name):g}")
    if optim.scheduler == "cosine" and getattr(scheduler, "T_max", config.train.epochs) != config.train.epochs:
        notices.append(f"the cosine schedule now ends at epoch {config.train.epochs} (was {scheduler.T_max})")
        scheduler.T_max = config.train.epochs
    if saved("lr", optim.lr) != optim.lr:
        # The configured lr is the schedule's base (one-cycle: its peak): the schedule keeps its position.
        before = current_lr(optimizer)
        after = set_lr(optimizer, scheduler, before * optim.lr / base_lr(optimizer, scheduler))
        notices.append(f"optim.lr {saved('lr', 0.0):g} → {optim.lr:g}: the learning rate is now {after:g}")
    return notices


def base_lr(optimizer: torch.optim.Optimizer, scheduler: Any) -> float:
    """The learning rate optim.lr sets: one-cycle's peak, another schedule's base, or the rate itself."""
    group = optimizer.param_groups[0]
    if "max_lr" in group:
        return float(group["max_lr"])
    if scheduler is not None and getattr(scheduler, "base_lrs", None):
        return float(scheduler.base_lrs[0])
    return float(group["lr"])


def _saved(state: dict[str, Any], section: str, name: str, default: Any) -> Any:
    """A setting of the checkpoint's run (`default` where the checkpoint does not record it)."""
    part = state.get("config", {}).get(section) if isinstance(state.get("config"), dict) else None
    return part.get(name, default) if isinstance(part, dict) else default
