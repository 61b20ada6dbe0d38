"""`ptviz.fit`: train a Task from your own script, in the cockpit or headless, with ptviz's run folder,
checkpoints, resume and attach."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

    from ptviz.engine.config import RunConfig
    from ptviz.engine.events import RunFinished
    from ptviz.engine.task import LossFn, MetricsFn, OptimizerFactory, Task


def fit(task: Task | None = None, /, *, model: nn.Module | None = None, train: Dataset | None = None,
        test: Dataset | None = None, val: Dataset | None = None, loss: LossFn | None = None,
        metrics: MetricsFn | None = None, optimizer: OptimizerFactory | None = None, kind: str = "",
        collate: Callable[[list[Any]], Any] | None = None, class_names: Sequence[str] = (), name: str = "",
        config: RunConfig | None = None, headless: bool | None = None, resume: str | os.PathLike | None = None,
        **settings: Any) -> RunFinished | None:
    """Train `task` (or a Task made from the keyword arguments) and return how the run ended.

    Settings are configuration fields by name, e.g. `fit(task, epochs=5, lr=1e-3, batch_size=64)` (any
    'section.field' path of the configuration also works as `config=`); everything else comes from the
    default recipe. The cockpit opens and starts training unless `headless` is true or stdout is not a
    terminal; headless runs print progress. `resume` continues a run folder this script trained before.
    Returns the run's RunFinished event (None when the cockpit was closed before the run ended); a task
    or setting that is not usable raises ptviz's UserError with a message saying why and where.
    """
    from ptviz.engine.config import TASK_FROM_FIT
    from ptviz.engine.task import Task

    if task is None:
        if model is None or train is None:
            raise TypeError("fit() needs a Task, or model= and train= (plus loss=, test=... as wanted)")
        task = Task(model=model, train=train, test=test, val=val, loss=loss, metrics=metrics, optimizer=optimizer,
                    kind=kind, collate=collate, class_names=class_names, name=name)
    elif model is not None or train is not None:
        raise TypeError("fit() takes a Task or model=/train=..., not both")
    task.name = task.name or _script_name()
    state, run_dir = (None, None)
    if resume is not None:
        state, run_dir, config = _resume(Path(resume), config)
    config = _configured(config, settings)
    config.data.task = TASK_FROM_FIT
    if headless is None:
        headless = not sys.stdout.isatty()
    finished: list[RunFinished] = []
    if headless:
        from ptviz.tui.headless import run_headless

        run_headless(config, resume=state, run_dir=run_dir, task=task, raise_errors=True, finished=finished)
    else:
        from ptviz.tui.entry import run_app

        run_app(config, resume=state, run_dir=run_dir, task=task, finished=finished)
    return finished[-1] if finished else None


def _script_name() -> str:
    """The running script's file name without .py ('train' for python train.py), or 'task'."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(main).stem if main else "task"


def _configured(config: RunConfig | None, settings: dict[str, Any]) -> RunConfig:
    """The base configuration with `settings` (field names or 'section.field' paths) applied and checked."""
    from ptviz.engine import config as cfgmod
    from ptviz.engine.errors import ConfigError, FieldError
    from ptviz.engine.recipes import DEFAULT_RECIPE, recipe

    config = (config or recipe(DEFAULT_RECIPE)).copy()
    by_name = {path.split(".", 1)[1]: path for path in cfgmod.field_paths()}
    errors = []
    for key, value in settings.items():
        path = key if key in cfgmod.field_paths() else by_name.get(key)
        if path is None:
            errors.append(FieldError(key, None, "is not a configuration field (see ptviz-tui --help)"))
            continue
        if cfgmod.field_type(path) == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif cfgmod.field_type(path) == "floats" and isinstance(value, (list, tuple)):
            value = tuple(value)
        cfgmod.set_value(config, path, value)
    errors += [e for e in cfgmod.validate(config) if e.path not in {x.path for x in errors}]
    if errors:
        raise ConfigError(errors)
    return config


def _resume(run_dir: Path, base: RunConfig | None) -> tuple[dict, Path, RunConfig]:
    """The newest checkpoint of a run folder trained by fit(), and its configuration."""
    from ptviz.engine.errors import UserError
    from ptviz.engine.storage.checkpoint import load_newest
    from ptviz.engine.storage.rundir import holder_pid
    from ptviz.tui.commands import config_of

    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    pid = holder_pid(run_dir)
    if pid is not None:
        raise UserError(f"{run_dir} is still running (pid {pid}); attach to it with: ptviz-tui attach {run_dir}")
    state, path, _ = load_newest(run_dir)
    return state, run_dir, base or config_of(state["config"], source=str(path))
