"""Opening the cockpit from the command line or ptviz.fit, and leaving the process once it has closed."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from ptviz.engine.config import RunConfig
from ptviz.engine.storage.lineage import Lineage

from .app import PtvizApp
from .heap import full_passes_on_a_clock


def run_app(config: RunConfig, *, resume: dict | None = None, run_dir: Path | None = None,
            attach: Path | None = None, unconfirmed_code: Mapping[str, str] | None = None, task: object = None,
            finished: list | None = None, parent: Lineage | None = None, tab: str = "train") -> int:
    """Open the cockpit on `config` (training `task` at once when given, showing `tab` first); returns the exit
    code, or, from the command line (no `finished` list for ptviz.fit to read), ends the process with it."""
    from .terminal import probe

    info = probe()  # before Textual reads the terminal: its answers, and any key typed since launch
    app = PtvizApp(config, resume=resume, run_dir=run_dir, attach=attach, unconfirmed_code=unconfirmed_code,
                   typed=info.typed if info else "", task=task, finished=finished, parent=parent, tab=tab)
    app.exits_process = finished is None
    with full_passes_on_a_clock():
        code = app.run()
    if not app.runner.remote_run and not app.runner.join(timeout=120):  # the UI is gone; the work is not lost
        print("ptviz-tui: the training thread did not stop in time", file=sys.stderr)
    # The terminal is restored, the run saved and its thread ended: nothing is left to do but Python's own
    # teardown, which takes seconds once torch is loaded (2 s and more on a busy 2-core machine). Leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    if not app.exits_process:
        return code or 0
    os._exit(code or 0)
