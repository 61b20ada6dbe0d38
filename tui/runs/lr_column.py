"""The runs table's lr column: the rate a run trains at now, marked where a live change or a schedule moved it."""

from __future__ import annotations

import math

from ptviz.engine import config as cfgmod
from ptviz.engine.storage.catalog import RunRecord

LR_PATH = "optim.lr"


def setting_lr(r: RunRecord) -> float | None:
    """optim.lr as the run's config.toml sets it."""
    try:
        return float(r.settings[LR_PATH])
    except (KeyError, ValueError):
        return None


def current_lr(r: RunRecord) -> float | None:
    """The rate of the run's last logged step or live change, else its setting."""
    return r.lr if r.lr is not None else setting_lr(r)


def moved(r: RunRecord) -> bool:
    """Whether the run trains at another rate than its setting."""
    setting = setting_lr(r)
    return r.lr is not None and setting is not None and not math.isclose(r.lr, setting, rel_tol=1e-6)


def rate_now_text(r: RunRecord) -> str:
    """The rate the run trains at now, short, for a legend: its setting as written unless it moved away."""
    now = current_lr(r)
    if now is None or not moved(r):
        return r.settings.get(LR_PATH, "-")
    return f"{now:.3g}"


def lr_text(r: RunRecord) -> str:
    """The table's cell: '0.05', or '0.005 (set 0.05)' when the rate moved away from the setting."""
    if moved(r):
        return f"{rate_now_text(r)} (set {r.settings[LR_PATH]})"
    now = current_lr(r)
    return r.settings.get(LR_PATH, "-" if now is None else f"{now:.3g}")


def with_lr(paths: list[str], records: list[RunRecord]) -> list[str]:
    """The differing setting paths, with optim.lr (in field order) when the runs' current rates differ from one
    another or from their settings, though the settings agree."""
    if LR_PATH in paths:
        return paths
    rates = {current_lr(r) for r in records if r.is_run and current_lr(r) is not None}
    if len(rates) < 2 and not any(moved(r) for r in records):
        return paths
    return [p for p in cfgmod.field_paths() if p in paths or p == LR_PATH]
