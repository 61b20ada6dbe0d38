"""Headless training: a Rich progress bar plus the tutorial's epoch lines and total time."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from engine.config import RunConfig
from engine.events import (
    CheckpointSaved,
    EpochEnded,
    Event,
    Notice,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)

from .cli import EXIT_FAILED, EXIT_OK, report


class ConsoleSink:
    """Turns engine events into a progress bar and printed lines (runs on the training thread)."""

    def __init__(self, console: Console, progress: Progress):
        self.console = console
        self.progress = progress
        self.task = None

    def emit(self, event: Event) -> None:
        """Show one event."""
        c = self.console
        if isinstance(event, RunStarted):
            c.print(f"[bold]{event.config['recipe']}[/]: {event.config['model']['name']} on "
                    f"{event.config['data']['dataset']} ({event.train_size} train / {event.test_size} test), "
                    f"{event.params_total:,} parameters ({event.params_trainable:,} trainable), "
                    f"device {event.device_name}")
            if event.run_dir:
                c.print(f"run directory: {event.run_dir}")
            self.task = self.progress.add_task("training", total=event.total_steps, completed=event.start_step,
                                               loss=float("nan"), rate=0.0)
        elif isinstance(event, StepMetrics) and self.task is not None:
            self.progress.update(self.task, completed=event.last_step, loss=event.losses[-1],
                                 rate=event.samples_per_s, description=f"epoch {event.epoch}")
        elif isinstance(event, EpochEnded):
            test = f", Test accuracy: {event.test_accuracy:.2%}" if event.test_accuracy is not None else ""
            val = f", Val accuracy: {event.val_accuracy:.2%}" if event.val_accuracy is not None else ""
            c.print(f"Epoch {event.epoch}, Loss: {event.train_loss:.4f}{test}{val} "
                    f"(train accuracy {event.train_accuracy:.2%}, {event.seconds:.1f} s)")
        elif isinstance(event, CheckpointSaved) and event.reason not in ("epoch", "best"):
            c.print(f"checkpoint ({event.reason}) saved: {event.path}")
        elif isinstance(event, Notice):
            style = {"error": "bold red", "warning": "yellow"}.get(event.level, "")
            c.print(f"[{style}]{event.level}: {event.text}[/]" if style else event.text)
        elif isinstance(event, RunFinished):
            if event.stopped:
                c.print(f"stopped at step {event.step}: {event.reason}")
            c.print(f"Training time: {event.seconds:.1f} s")
        elif isinstance(event, RunFailed):
            pass  # reported once, by run_headless


def run_headless(config: RunConfig, resume: dict | None = None, run_dir=None) -> int:
    """Train `config` in this process; exit code 0 on success, 2 for bad input, 1 for other failures."""
    from engine.loop import train

    console = Console(highlight=False)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:,.0f} samples/s"),
        TimeRemainingColumn(), console=console, transient=True,
    )
    try:
        with progress:
            result = train(config, ConsoleSink(console, progress), resume=resume, run_dir=run_dir)
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        return report(exc)
    if result.reason.startswith("loss diverged"):
        return EXIT_FAILED
    return EXIT_OK
