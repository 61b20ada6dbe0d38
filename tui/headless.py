"""Headless training: a Rich progress bar plus the tutorial's epoch lines and total time.

SIGINT, SIGTERM and SIGHUP checkpoint at the next step boundary and exit with 128 + the signal's number;
a diverged loss exits with 3. Another terminal can drive the run meanwhile (`ptviz-tui attach RUN_DIR`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ptviz.engine.config import RunConfig
from ptviz.engine.storage.lineage import Lineage
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
            c.print(f"[bold]{event.config['recipe']}[/]: {event.config['model']['name']} on "
                    f"{event.config['data']['dataset']} ({event.train_size:,} train / {event.test_size:,} test), "
                    f"{event.params_total:,} parameters ({event.params_trainable:,} trainable), "
                    f"device {event.device_name}")
            if event.run_dir:
                c.print(f"run directory: {event.run_dir}")
            if event.start_step:
                c.print(f"resumed at step {event.start_step:,} (epoch {event.start_epoch + 1})")
            if self.console.is_terminal:  # a bar in a log file is noise; a run that fails to start shows none
                self.progress.start()
            self.task = self.progress.add_task("training", total=event.total_steps, completed=event.start_step,
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
            test = f", Test accuracy: {event.test_accuracy:.2%}" if event.test_accuracy is not None else ""
            val = f", Val accuracy: {event.val_accuracy:.2%}" if event.val_accuracy is not None else ""
            c.print(f"Epoch {event.epoch}, Loss: {event.train_loss:.4f}{test}{val} "
                    f"(train accuracy {event.train_accuracy:.2%}, {event.seconds:.1f} s)")
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


def run_headless(config: RunConfig, resume: dict | None = None, run_dir: Path | None = None,
                 parent: Lineage | None = None) -> int:
    """Train `config` in this process (a fork of another run with `parent`); the exit code says how it ended."""
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
                result = train(config, sink, control, resume=resume, run_dir=run_dir, parent=parent)
            finally:
                _stop_progress(progress)
    except KeyboardInterrupt:
        _print(console, "interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        return report(exc)
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
