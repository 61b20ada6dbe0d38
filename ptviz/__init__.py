"""ptviz: a terminal cockpit for training PyTorch models.

Everything installs under this one name, so a project's own `engine.py` or `tui/` never shadows it:
`ptviz.engine` is the headless core (configuration, data, models, the training loop), `ptviz.tui` the
Textual cockpit, headless runner and command line. The public API for your own training is two names:

    ptviz.Task   what to train: a model, datasets, a loss, and optionally metrics, an optimizer, a kind
    ptviz.fit    train a Task from a script, in the cockpit or headless (fit(task, epochs=5, headless=True))

This package's import stays light (no torch): both load on first use, so the command line answers --help
at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Task", "fit"]

if TYPE_CHECKING:
    from ptviz.engine.task import Task
    from ptviz.fitting import fit


def __getattr__(name: str) -> Any:
    """Load Task and fit on first use (they import torch)."""
    if name == "Task":
        from ptviz.engine.task import Task

        return Task
    if name == "fit":
        from ptviz.fitting import fit

        return fit
    raise AttributeError(f"module 'ptviz' has no attribute {name!r}")
