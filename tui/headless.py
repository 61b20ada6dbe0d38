"""Headless training: a Rich progress bar plus the tutorial's epoch lines and total time.

SIGINT, SIGTERM and SIGHUP checkpoint at the next step boundary and exit with 128 + the signal's number;
a diverged loss exits with 3. Another terminal can drive the run meanwhile (`ptviz-tui attach RUN_DIR`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ptviz.engine.config import TASK_FROM_FIT, RunConfig
from ptviz.engine.events import (
    CheckpointSaved,
    Diverged,
    EpochEnded,
    Event,
    Notice,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)

from .cli import EXIT_DIVERGED, EXIT_OK, EXIT_SIGNAL_BASE, report
from .train.options_text import options_line

if TYPE_CHECKING:
    from ptviz.engine.task import Task


def run_title(event: RunStarted) -> str:
    """'digits-mlp: mnist-mlp on digits', or 'task regression (examples/regression.py:make)'."""
    c = event.config
    if event.task:
        spec = c["data"].get("task", "")
        return f"task {event.task}" + (f" ({spec})" if spec and spec != TASK_FROM_FIT else "")
    return f"{c['recipe']}: {c['model']['name']} on {c['data']['dataset']}"


def metric_text(values: dict[str, float], prefix: str = "") -> str:
    """'mae 0.1234, r2 0.9'."""
    return ", ".join(f"{prefix}{name} {value:.4g}" for name, value in values.items())


def epoch_line(event: EpochEnded) -> str:
    """The tutorial's epoch line; a task adds its test loss and named metrics."""
    parts = [f"Epoch {event.epoch}, Loss: {event.train_loss:.4f}"]
    for split in ("test", "val"):
        accuracy, loss = getattr(event, f"{split}_accuracy"), getattr(event, f"{split}_loss")
        if accuracy is not None:
            parts.append(f"{split.capitalize()} accuracy: {accuracy:.2%}")
        elif loss is not None:
            parts.append(f"{split.capitalize()} loss: {loss:.4f}")
        if getattr(event, f"{split}_metrics"):
            parts.append(metric_text(getattr(event, f"{split}_metrics"), f"{split} "))
    if event.ema_test_accuracy is not None:  # the weight average's (train.ema_decay)
        parts.append(f"EMA test accuracy: {event.ema_test_accuracy:.2%}")
    elif event.ema_test_loss is not None:
        parts.append(f"EMA test loss: {event.ema_test_loss:.4f}")
    train = [f"train accuracy {event.train_accuracy:.2%}"] if event.train_accuracy is not None else []
    train += [metric_text(event.train_metrics, "train ")] if event.train_metrics else []
    return ", ".join(parts) + f" ({', '.join([*train, f'{event.seconds:.1f} s'])})"


class ConsoleSink:
    """Turns engine events into a progress bar and printed lines (runs on the training thread)."""

    def __init__(self, console: Console, progress: Progress):
        self.console = console
        self.progress = progress
        self.task = None
        self.terminal_gone = False
        self.epoch = 1
        self.paused = False

    def _description(self) -> str:
        return f"paused, epoch {self.epoch}" if self.paused else f"epoch {self.epoch}"

    def emit(self, event: Event) -> None:
        """Show one event; once the terminal is gone (SSH dropped), show nothing and carry on."""
        if self.terminal_gone:
            return
        try:
            self._show(event)
        except OSError:
            self.terminal_gone = True  # training must not die with the terminal
            _silence_output()

    def _show(self, event: Event) -> None:
        c = self.console
        if isinstance(event, RunStarted):
            c.print(f"[bold]{escape(run_title(event))}[/] ({event.train_size:,} train / {event.test_size:,} test), "
                    f"{event.params_total:,} parameters ({event.params_trainable:,} trainable), "
                    f"device {event.device_name}")
            if event.run_dir:
                c.print(f"run directory: {event.run_dir}")
            if options := options_line(event.config):
                c.print(f"options: {options}")
            if event.start_step:
                c.print(f"resumed at step {event.start_step:,} (epoch {event.start_epoch + 1})")
            if self.console.is_terminal:  # a bar in a log file is noise; a run that fails to start shows none
                self.progress.start()
            self.task = self.progress.add_task("training", total=event.total_steps or None, completed=event.start_step,
                                               loss=float("nan"), rate=0.0)
        elif isinstance(event, StepMetrics) and self.task is not None:
            self.epoch = event.epoch
            self.progress.update(self.task, completed=event.last_step, loss=event.losses[-1],
                                 rate=event.samples_per_s, description=self._description())
        elif isinstance(event, (Paused, Resumed)) and self.task is not None:
            self.paused = isinstance(event, Paused)
            fields = {"rate": 0.0} if self.paused else {}  # nothing goes through while paused
            self.progress.update(self.task, description=self._description(), **fields)
        elif isinstance(event, EpochEnded):
            c.print(escape(epoch_line(event)))
        elif isinstance(event, CheckpointSaved) and event.reason not in ("epoch", "best", "periodic"):
            c.print(f"checkpoint ({event.reason}) saved: {event.path}")
        elif isinstance(event, Diverged):
            pass  # the Notice that follows says it
        elif isinstance(event, Notice):
            style = {"error": "bold red", "warning": "yellow"}.get(event.level, "")
            c.print(f"[{style}]{event.level}: {event.text}[/]" if style else event.text)
        elif isinstance(event, RunFinished):
            if event.stopped:
                c.print(f"stopped at step {event.step:,}: {event.reason}")
            c.print(f"Training time: {event.seconds:.1f} s")
        elif isinstance(event, RunFailed):
            pass  # reported once, by run_headless


def run_headless(config: RunConfig, resume: dict | None = None, run_dir: Path | None = None, *,
                 task: Task | None = None, raise_errors: bool = False, finished: list | None = None) -> int:
    """Train `config` (or `task`) in this process; the exit code says how it ended (see the module docstring).

    With `raise_errors` a failure is raised rather than printed (ptviz.fit); `finished` receives RunFinished.
    """
    from ptviz.engine.commands import Control
    from ptviz.engine.loop import train
    from ptviz.engine.signals import checkpoint_on_signals

    # soft_wrap: long lines (paths) are never broken by Rich, in a terminal or redirected to a file.
    console = Console(highlight=False, soft_wrap=True)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:,.0f} samples/s"),
        TimeRemainingColumn(), console=console, transient=True,
    )
    sink = ConsoleSink(console, progress)
    control = Control()
    received: list[int] = []
    try:
        with checkpoint_on_signals(control) as received:
            try:
                result = train(config, sink, control, resume=resume, run_dir=run_dir, task=task)
            finally:
                _stop_progress(progress)
    except KeyboardInterrupt:
        _print(console, "interrupted")
        if raise_errors:
            raise
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        if raise_errors:
            raise
        return report(exc)
    if finished is not None:
        finished.append(result)
    if result.state == "diverged":
        return EXIT_DIVERGED
    if received:
        return EXIT_SIGNAL_BASE + received[0]
    return EXIT_OK


def _stop_progress(progress: Progress) -> None:
    if not progress.live.is_started:
        return
    try:
        progress.stop()
    except OSError:
        _silence_output()


def _silence_output() -> None:
    """Point stdout and stderr at /dev/null: the terminal hung up, and output left for it would fail the exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
        os.dup2(devnull, stream.fileno())
    os.close(devnull)


def _print(console: Console, text: str) -> None:
    try:
        console.print(text)
    except OSError:
        pass
