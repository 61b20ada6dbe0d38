"""The Data and Model tabs load after the cockpit's first screen: they bring torch, torchvision and the data.

Importing them costs more than the rest of the cockpit together (torch alone takes over a second on a
2-core CPU), so the first screen shows the Train tab and says what is loading in their place, while a
worker thread imports them; the app then mounts them. A run can start meanwhile: it loads torch itself.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Mapping

from textual.widget import Widget
from textual.widgets import Static

from ptviz.engine.config import RunConfig

MODULES = ("ptviz.tui.data.tab", "ptviz.tui.model.tab")
LOADING_NOTE = "loading torch…"
WAITING = {"data": "Loading torch, torchvision and the data set…", "model": "Loading torch and the model…"}


def imported() -> bool:
    """Whether the tabs' modules are imported already (a second app in one process need not wait)."""
    return all(name in sys.modules for name in MODULES)


def load() -> tuple[float, str]:
    """Import the tabs' modules (on a worker thread); the seconds it took and torch's version."""
    start = time.perf_counter()
    for name in MODULES:
        importlib.import_module(name)
    import torch

    from .heap import freeze_imported

    freeze_imported()
    return time.perf_counter() - start, torch.__version__


def build(name: str, config: RunConfig, unconfirmed_code: Mapping[str, str], task: object = None) -> Widget:
    """The Data ("data") or Model ("model") tab over the app's configuration (and ptviz.fit's `task`)."""
    if name == "data":
        from .data.tab import DataTab

        return DataTab(config, task=task, unconfirmed_code=unconfirmed_code, id="data-tab", classes="split")
    from .model.tab import ModelTab

    return ModelTab(config, id="model-tab", classes="split", unconfirmed_code=unconfirmed_code, task=task)


class TabLoading(Static):
    """Stands in for a tab while its modules load, and says so."""

    DEFAULT_CSS = """
    TabLoading { width: 1fr; height: 1fr; content-align: center middle; color: $text-muted; }
    TabLoading.-failed { color: $error; }
    """

    def __init__(self, name: str):
        super().__init__(WAITING[name], id=f"{name}-loading")

    def failed(self, error: BaseException | None) -> None:
        """Say that loading failed, and why."""
        self.update(f"This tab could not load: {error!r}")
        self.add_class("-failed")
