"""A run's directory: runs/<date>-<time>-<recipe>/ with its configuration and checkpoints."""

from __future__ import annotations

import re
import time
from pathlib import Path

from .config import RunConfig, dump_toml


def create_run_dir(config: RunConfig, now: float | None = None) -> Path:
    """Make a fresh run directory under config.output.runs_dir and write config.toml into it."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    recipe = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.recipe) or "run"
    parent = Path(config.output.runs_dir)
    parent.mkdir(parents=True, exist_ok=True)
    base = parent / f"{stamp}-{recipe}"
    path, n = base, 1
    while True:
        try:
            path.mkdir()
            break
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")
    (path / "checkpoints").mkdir()
    (path / "config.toml").write_text(dump_toml(config))
    return path
