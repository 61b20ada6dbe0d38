"""Which configuration fields name code to import and run, and whether the user named that code themselves.

A run folder or checkpoint may come from someone else. Loading it never runs code (weights_only), but
continuing it would import whatever its configuration names (`model.name = "nets.py:build"`). So resume,
attach and fork only import code the user names again (a flag, or a yes in the cockpit); this module says
which fields those are. data.task names a task factory; a run trained by ptviz.fit names none (its Task lives in the user's script).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .config import MODELS, TASK_FROM_FIT, RunConfig


def user_code(config: RunConfig) -> dict[str, str]:
    """The fields of `config` that name user code, with their values: {'model.name': 'nets.py:build'}."""
    found: dict[str, str] = {}
    if config.model.name not in MODELS and ":" in config.model.name:
        found["model.name"] = config.model.name
    if config.data.task and config.data.task != TASK_FROM_FIT:
        found["data.task"] = config.data.task
    return found


def unconfirmed(stored: RunConfig, named: Mapping[str, object]) -> dict[str, str]:
    """The user code `stored` names that the user did not name again (`named`: field -> value they gave).

    Naming a field at all confirms it: the value they gave is what runs, so it is their code either way.
    """
    return {path: spec for path, spec in user_code(stored).items() if path not in named}


def pending(config: RunConfig, unconfirmed_code: Mapping[str, str]) -> dict[str, str]:
    """The unconfirmed code `config` still names (the user may have replaced it with their own since)."""
    names = user_code(config)
    return {path: spec for path, spec in unconfirmed_code.items() if names.get(path) == spec}


def describe(path: str, spec: str) -> str:
    """One line showing what a field would run: the spec, and the file it resolves to from here."""
    target = spec.rpartition(":")[0]
    if target.endswith(".py") or "/" in target or "\\" in target:
        return f"{path} = {spec} (the file {Path(target).expanduser().resolve()})"
    return f"{path} = {spec} (the module {target}, as imported from here)"
