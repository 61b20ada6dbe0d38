"""Branch a run: a new run that starts from one of another run's checkpoints with some settings changed.

The child takes the checkpoint's weights, optimizer state, position and RNG state, so its first step is the
parent's step + 1 and, with nothing changed, it would repeat the parent exactly. Changed optimizer settings
(lr, momentum, weight decay, schedule parameters) are written into the optimizer and scheduler state it
starts from. Everything that can be checked is checked before a file is written: the checkpoint, the new
settings, and whether the checkpoint's weights fit the model the new settings build.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as cfgmod
from . import trust
from .config import RunConfig
from .errors import CheckpointError, ModelError, UserError
from .storage import checkpoint as ckpt
from .storage.lineage import Lineage
from .storage.runlog import METRICS_JSONL

NAMED = {"best": "best.pt", "last": "last.pt"}
# Settings that would make the optimizer or schedule state meaningless: a fork keeps those states.
KEPT_KINDS = ("optim.optimizer", "optim.scheduler")
USER_CODE_FLAGS = {"model.name": "--model", "data.task": "--task"}  # fields that may name code, and their flags


@dataclass(frozen=True)
class ForkPlan:
    """A checked fork, ready to train: the child's settings and the state it starts from."""

    config: RunConfig
    state: dict[str, Any]  # the checkpoint, with the child's optimizer settings written into it
    lineage: Lineage


def checkpoint_choices(run_dir: Path) -> list[str]:
    """The checkpoint files of a run, newest first."""
    return [p.name for p in ckpt.stored_checkpoints(Path(run_dir) / "checkpoints")]


def load_parent(run_dir: Path, which: str | None = None) -> tuple[dict[str, Any], Path]:
    """The checkpoint to branch from: `which` is best, last, a file name in checkpoints/, or None (the newest)."""
    run_dir = Path(run_dir)
    if not which:
        state, path, _ = ckpt.load_newest(run_dir)
        return state, path
    name = NAMED.get(which, which)
    path = Path(name) if Path(name).is_absolute() or "/" in name else run_dir / "checkpoints" / name
    if not path.is_file() and not path.suffix:
        path = path.with_suffix(".pt")
    if not path.is_file():
        available = ", ".join(checkpoint_choices(run_dir)) or "none"
        raise CheckpointError(f"{run_dir}: no checkpoint {which!r} (available: {available})")
    return ckpt.load_checkpoint(path), path


def user_code_fields(config: RunConfig) -> list[str]:
    """The fields of `config` that name user code to import (engine/trust.py decides which)."""
    return list(trust.user_code(config))


def changed_settings(before: RunConfig, after: RunConfig) -> dict[str, list[Any]]:
    """'section.field' -> [before, after] for every setting that differs (as TOML-ready values)."""
    a, b = before.to_dict(), after.to_dict()
    changed = {}
    if a["recipe"] != b["recipe"]:
        changed["recipe"] = [a["recipe"], b["recipe"]]
    for path in cfgmod.field_paths():
        if path == "output.runs_dir":
            continue  # where the files go, not how the run trains
        section, name = path.split(".")
        if a[section][name] != b[section][name]:
            changed[path] = [a[section][name], b[section][name]]
    return changed


def plan_fork(parent_dir: Path, state: dict[str, Any], checkpoint: Path, config: RunConfig,
              named_by_user: set[str] | frozenset[str] = frozenset()) -> ForkPlan:
    """Check the fork and build the state it starts from; UserError says what does not fit, before any write.

    `named_by_user` lists the fields the user gave again for this fork: a field naming user code is only
    imported when it is among them (a run folder must never make ptviz run code on its own).
    """
    parent_config = fork_config(state, source=str(checkpoint))  # what the fork changes is against the checkpoint
    cfgmod.check(config)
    for path in user_code_fields(config):
        if path not in named_by_user:
            raise UserError(f"{parent_dir} trains user code ({path} = {cfgmod.get_value(config, path)!r}); "
                            "ptviz never imports code that only a run folder names. Name it again to run it: "
                            f"{USER_CODE_FLAGS[path]} {cfgmod.get_value(config, path)}")
    changed = changed_settings(parent_config, config)
    for path in KEPT_KINDS:
        if path in changed:
            old, new = changed[path]
            raise UserError(f"a fork continues the parent's optimizer and schedule, so {path} cannot change "
                            f"({old} → {new}); start a new run for that")
    if int(state["epoch"]) >= config.train.epochs:
        raise UserError(f"the checkpoint is at the end of epoch {state['epoch']}; train.epochs is "
                        f"{config.train.epochs}: set it above {state['epoch']} (epochs, or --epochs N) so the fork "
                        f"trains")
    if config.train.max_steps and int(state["step"]) >= config.train.max_steps:
        raise UserError(f"the checkpoint is at step {state['step']}, past train.max_steps={config.train.max_steps}")
    check_fit(config, state, parent_dir, changed)
    child = copy.copy(state)
    child.update(config=config.to_dict(), best_test_accuracy=None, save_id="")
    adapt_optimizer(child, parent_config, config)
    lineage = Lineage(parent=str(Path(parent_dir).resolve()), checkpoint=checkpoint.name, step=int(state["step"]),
                      epoch=int(state["epoch"]), changed=changed)
    return ForkPlan(config=config, state=child, lineage=lineage)


def config_from(data: dict[str, Any], source: str) -> RunConfig:
    """The RunConfig a checkpoint's stored configuration describes."""
    config = RunConfig()
    if isinstance(data.get("recipe"), str):
        config.recipe = data["recipe"]
    return cfgmod.apply_dict(config, data, source=source)


def fork_config(state: dict[str, Any], source: str) -> RunConfig:
    """The settings a fork starts from: the checkpoint's, with optim.lr the rate its optimizer was training at.

    A live change or a schedule may have moved the rate away from the run's setting; the fork goes on at the
    checkpoint's rate unless the user gives another (even the setting itself, which then wins).
    """
    config = config_from(state["config"], source=source)
    live = checkpoint_lr(state)
    if live is not None and not cfgmod.check_field("optim.lr", live):
        config.optim.lr = live
    return config


def checkpoint_lr(state: dict[str, Any]) -> float | None:
    """The learning rate the checkpoint's optimizer was training at (None when it does not say)."""
    try:
        return float(state["optimizer"]["param_groups"][0]["lr"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def check_fit(config: RunConfig, state: dict[str, Any], parent_dir: Path,
              changed: dict[str, list[Any]] | None = None) -> None:
    """CheckpointError when the checkpoint's weights do not load into the model `config` builds.

    The model is built for the input shape and classes the parent trained on (read from its log), without
    pretrained weights: the checkpoint replaces them anyway.
    """
    from .models.registry import build_model

    shape, classes = parent_input(parent_dir)
    if shape is None:
        return  # no log to learn the input shape from: the run's own restore checks it before writing
    model_cfg = copy.deepcopy(config.model)
    model_cfg.pretrained = False
    num_classes = model_cfg.num_classes or classes
    model_changes = ", ".join(f"{p} {_short(a)} → {_short(b)}" for p, (a, b) in (changed or {}).items()
                              if p.startswith("model."))
    try:
        model = build_model(model_cfg, shape, num_classes)
        model.load_state_dict(state["model"])
    except ModelError:
        raise
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        why = f" ({model_changes})" if model_changes else ""
        raise CheckpointError(f"the checkpoint does not fit the model these settings build{why}: {first}") from None


def parent_input(run_dir: Path) -> tuple[tuple[int, int, int] | None, int]:
    """The input shape and class count from the parent's first 'started' row (None when it has none)."""
    try:
        with open(Path(run_dir) / METRICS_JSONL, "rb") as fh:
            for _ in range(50):  # the run's first row; a few more in case an older version wrote others first
                line = fh.readline()
                if not line:
                    break
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and row.get("kind") == "started":
                    shape = tuple(int(v) for v in row.get("input_shape") or ())
                    return (shape if len(shape) == 3 else None), len(row.get("class_names") or ())  # type: ignore[return-value]
    except OSError:
        pass
    return None, 0


def adapt_optimizer(state: dict[str, Any], before: RunConfig, after: RunConfig) -> None:
    """Write the child's optimizer and schedule settings into the optimizer and scheduler state (in place).

    optim.lr is the rate of the child's first step (fork_config starts it at the checkpoint's rate): when it
    differs from that rate, the rates are rescaled to it and a schedule continues from it.
    """
    optimizer = copy.deepcopy(state["optimizer"])
    scheduler = copy.deepcopy(state.get("scheduler"))
    groups = optimizer.get("param_groups", [])
    a, b = before.optim, after.optim
    if groups and b.lr != float(groups[0]["lr"]):
        factor = b.lr / float(groups[0]["lr"])
        for group in groups:
            for key in ("lr", "initial_lr", "max_lr", "min_lr"):
                if key in group:
                    group[key] = group[key] * factor
        if isinstance(scheduler, dict):
            for key in ("base_lrs", "_last_lr"):
                if isinstance(scheduler.get(key), list):
                    scheduler[key] = [v * factor for v in scheduler[key]]
    for group in groups:
        if b.weight_decay != a.weight_decay and "weight_decay" in group:
            group["weight_decay"] = b.weight_decay
        if b.momentum != a.momentum and b.optimizer == "sgd-momentum" and "momentum" in group:
            group["momentum"] = b.momentum
    if isinstance(scheduler, dict):
        if b.step_size != a.step_size and "step_size" in scheduler:
            scheduler["step_size"] = b.step_size
        if b.gamma != a.gamma and "gamma" in scheduler:
            scheduler["gamma"] = b.gamma
        if after.train.epochs != before.train.epochs and "T_max" in scheduler:
            scheduler["T_max"] = after.train.epochs
    state["optimizer"], state["scheduler"] = optimizer, scheduler


def _short(value: Any) -> str:
    return cfgmod.format_value(value) if not isinstance(value, (dict, list)) or value else "none"
