"""Headless training: a progress bar per epoch plus the tutorial's epoch lines and total time.

Whatever changes the run between epochs (a pause, a resume, a learning-rate change, an evaluation or a
checkpoint, often sent from another terminal) gets one line with its step, so a `nohup` log tells the story.
SIGINT, SIGTERM and SIGHUP checkpoint at the next step boundary and exit with 128 + the signal's number;
a diverged loss exits with 3. Another terminal can drive the run meanwhile (`ptviz-tui attach RUN_DIR`).
Output that can no longer be written (a closed pipe, a hung-up terminal) is dropped; training goes on.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ptviz.engine.config import TASK_FROM_FIT, RunConfig
from ptviz.engine.storage.lineage import Lineage
from ptviz.engine.events import (
    CheckpointSaved,
    EpochEnded,
    Evaluated,
    Event,
    LrChanged,
    Notice,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
    TrainableChanged,
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
    """The tutorial's epoch line ('Epoch 3, Loss: 0.1234, Test accuracy: 95.00%'), with train accuracy and time;
    a task adds its test loss and named metrics. The same in the headless console and the cockpit's log."""
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


# Checkpoints written at every epoch's end go unsaid: the epoch's line already marks them.
ROUTINE_CHECKPOINTS = ("epoch", "best")


def format_eta(seconds: float | None) -> str:
    """3725 -> '1:02:05'; None -> '-'."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def what_trains(config: RunConfig | dict) -> str:
    """'mnist-mlp on digits': the model and the data set a configuration trains, by their names."""
    plain = config if isinstance(config, dict) else {"model": {"name": config.model.name},
                                                    "data": {"dataset": config.data.dataset}}
    return f"{plain['model']['name']} on {plain['data']['dataset']}"


def run_names(config: RunConfig | dict, task: str = "") -> tuple[str, str]:
    """('digits-mlp', 'mnist-mlp on digits'), or for a task ('task two', 'examples/two.py:make'): what a run is
    called and what it trains (`task` the task's name once a run has built it; a task ignores the recipe's model
    and data)."""
    plain = config if isinstance(config, dict) else config.to_dict()
    spec = plain["data"].get("task", "")
    if not spec:
        return plain["recipe"], what_trains(plain)
    return (f"task {task}" if task else "task"), ("" if spec == TASK_FROM_FIT else spec)


def run_line(event: RunStarted) -> str:
    """'digits-mlp: mnist-mlp on digits (1,438 train / 359 test), ... device CPU': the recipe, what it trains;
    the same in the headless console and the cockpit's log."""
    return (f"{run_title(event)} ({event.train_size:,} train / "
            f"{event.test_size:,} test), {event.params_total:,} parameters ({event.params_trainable:,} trainable), "
            f"device {event.device_name}")


def event_line(event: Event) -> str | None:
    """The one line printed for an event that changed the run between epochs, or None."""
    if isinstance(event, Paused):
        return f"paused at step {event.step:,}"
    if isinstance(event, Resumed):
        return f"resumed at step {event.step:,}"
    if isinstance(event, LrChanged):
        return f"learning rate set to {event.lr:g} at step {event.step:,}"
    if isinstance(event, Evaluated) and event.mid_epoch:
        accuracy = f", accuracy {event.accuracy:.2%}" if event.accuracy is not None else ""
        named = f", {metric_text(event.metrics)}" if event.metrics else ""
        return (f"evaluated on {event.split} at step {event.step:,} (epoch {event.epoch}): loss {event.loss:.4f}"
                f"{accuracy}{named}")
    if isinstance(event, CheckpointSaved) and event.reason not in ROUTINE_CHECKPOINTS:
        return f"checkpoint ({event.reason}) saved at step {event.step:,}: {event.path}"
    if isinstance(event, TrainableChanged):
        what = event.module or "the whole model"
        return (f"{'unfroze' if event.trainable else 'froze'} {what} at step {event.step:,} "
                f"({event.params_trainable:,} of {event.params_total:,} parameters trainable)")
    return None


class ConsoleSink:
    """Turns engine events into a progress bar per epoch and printed lines (runs on the training thread).

    The bar's ETA comes from the run's active time per step (pauses excluded), so it holds still while the
    run is paused instead of growing with the wall clock, and picks up where it was on resume.
    """

    def __init__(self, console: Console, progress: Progress):
        self.console = console
        self.progress = progress
        self.task = None
        self.terminal_gone = False
        self.epoch = 1
        self.epochs = 0
        self.paused = False
        self.failed: RunFailed | None = None  # the run's failure, as the engine told it (which rank, several ranks)
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.start_step = 0
        self.print_every = 0  # output.print_every: the tutorial's running-loss lines
        self.running, self.running_n = 0.0, 0

    def _description(self) -> str:
        epoch = f"epoch {self.epoch}/{self.epochs}" if self.epochs else f"epoch {self.epoch}"
        return f"paused, {epoch}" if self.paused else epoch

    def emit(self, event: Event) -> None:
        """Show one event; once the output is gone (SSH dropped, pipe closed), show nothing and carry on."""
        if isinstance(event, RunFailed):
            self.failed = event
        if self.terminal_gone:
            return
        try:
            self._show(event)
        except OSError:
            self.terminal_gone = True  # training must not die with its output: the run folder has the logs
            _silence_output()

    def _say(self, text: str, style: str | None = None) -> None:
        self.console.print(text, style=style, markup=False)  # paths and messages are printed as they are

    def _eta(self, event: StepMetrics) -> str:
        """'0:12 (run 2:10)': the epoch's and the run's remaining time at this run's pace so far."""
        done = event.last_step - self.start_step
        if done <= 0 or event.elapsed <= 0:
            return "-"
        per_step = event.elapsed / done
        epoch_left = max(0, self.steps_per_epoch - event.epoch_step) * per_step
        run_left = max(0, self.total_steps - event.last_step) * per_step
        return f"{format_eta(epoch_left)} (run {format_eta(run_left)})"

    def _show(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            title = run_title(event)
            self.console.print(f"[bold]{escape(title)}[/]{escape(run_line(event)[len(title):])}")
            if event.world_size > 1:
                per = event.global_batch // event.world_size
                self._say(f"{event.world_size} processes (torchrun), global batch {event.global_batch:,} "
                          f"({per:,} per process)" + (f"; restart {event.restart}" if event.restart else ""))
            if event.run_dir:
                self._say(f"run directory: {event.run_dir}")
            if options := options_line(event.config):
                self._say(f"options: {options}")
            if event.start_step:
                self._say(f"resumed at step {event.start_step:,} (epoch {event.epoch})")
            self.epochs, self.steps_per_epoch = event.epochs, event.steps_per_epoch
            self.total_steps, self.start_step = event.total_steps, event.start_step
            self.epoch = event.start_epoch + 1
            self.print_every = int(event.config.get("output", {}).get("print_every") or 0)
            if self.console.is_terminal:  # a bar in a log file is noise; a run that fails to start shows none
                self.progress.start()
            done = event.start_step - event.start_epoch * event.steps_per_epoch
            self.task = self.progress.add_task(self._description(), total=event.steps_per_epoch or None,
                                               completed=done, loss=float("nan"), rate=0.0, eta="-")
        elif isinstance(event, StepMetrics) and self.task is not None:
            if event.epoch != self.epoch:
                self.epoch, self.running, self.running_n = event.epoch, 0.0, 0
            self._running_loss(event)
            self.progress.update(self.task, completed=event.epoch_step, loss=event.losses[-1],
                                 rate=event.samples_per_s, eta=self._eta(event), description=self._description())
        elif isinstance(event, (Paused, Resumed)) and self.task is not None:
            self.paused = isinstance(event, Paused)
            fields = {"rate": 0.0} if self.paused else {}  # nothing goes through while paused; the ETA holds
            self.progress.update(self.task, description=self._description(), **fields)
        if isinstance(event, EpochEnded):
            self._say(epoch_line(event))
        elif isinstance(event, Notice):  # a divergence is told by its Notice; a failure once, by run_headless
            style = {"error": "bold red", "warning": "yellow"}.get(event.level)
            self._say(f"{event.level}: {event.text}" if style else event.text, style)
        elif isinstance(event, RunFinished):
            if event.stopped:
                self._say(f"stopped at step {event.step:,}: {event.reason}")
            self._say(f"Training time: {event.seconds:.1f} s")
        elif (line := event_line(event)) is not None:
            self._say(line)

    def _running_loss(self, event: StepMetrics) -> None:
        """The tutorial's '[1,   100] loss: 2.103': the mean loss of the last print_every batches of the epoch."""
        if not self.print_every:
            return
        for step, loss in zip(event.steps, event.losses):
            batch = event.epoch_step - (event.last_step - step)  # 1-based within the epoch
            self.running += loss
            self.running_n += 1
            if batch % self.print_every == 0:
                self._say(f"[{event.epoch}, {batch:5d}] loss: {self.running / self.running_n:.3f}")
                self.running, self.running_n = 0.0, 0


class OutputMayClose(Console):
    """A Console that reports a closed pipe (`| head`, a restarted `tee`) as an OSError to its caller.

    Rich's own answer to a broken pipe is to exit the process, which would end the training it reports on.
    """

    def on_broken_pipe(self) -> None:
        """Raise instead of exiting: ConsoleSink then drops all further output and training carries on."""
        self.quiet = True
        raise BrokenPipeError(errno.EPIPE, "the output pipe was closed")


def run_headless(config: RunConfig, resume: dict | None = None, run_dir: Path | None = None, *,
                 task: Task | None = None, raise_errors: bool = False, finished: list | None = None,
                 parent: Lineage | None = None) -> int:
    """Train `config` (or `task`) in this process; the exit code says how it ended (see the module docstring).

    With `raise_errors` a failure is raised rather than printed (ptviz.fit); `finished` receives RunFinished;
    `parent` makes the run a fork of another.
    """
    from ptviz.engine.commands import Control
    from ptviz.engine.distributed.env import is_follower
    from ptviz.engine.loop import train
    from ptviz.engine.signals import checkpoint_on_signals
    from ptviz.engine.sinks import NullSink

    # soft_wrap: long lines (paths) are never broken by Rich, in a terminal or redirected to a file.
    console = OutputMayClose(highlight=False, soft_wrap=True)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:,.0f} samples/s"),
        TextColumn("ETA {task.fields[eta]}"), console=console, transient=True,
    )
    follower = is_follower()  # a rank other than 0 of several: rank 0 tells the story, and any rank's failure
    sink = NullSink() if follower else ConsoleSink(console, progress)
    control = Control()
    received: list[int] = []
    try:
        with checkpoint_on_signals(control) as received:
            try:
                result = train(config, sink, control, resume=resume, run_dir=run_dir, task=task, parent=parent)
            finally:
                _stop_progress(progress)
    except KeyboardInterrupt:
        if not follower:
            _print(console, "interrupted")
        if raise_errors:
            raise
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line and an exit code
        _tell_agent(exc)
        if raise_errors:
            raise
        if follower and not os.environ.get("PTVIZ_DEBUG"):
            return report_quietly(exc)
        failed = getattr(sink, "failed", None)
        if failed is not None and failed.rank:  # another rank failed first: its error and traceback, not ours
            return report_rank_failure(failed)
        return report(exc)
    if finished is not None:
        finished.append(result)
    if result.state == "diverged":
        return EXIT_DIVERGED
    if received:
        return EXIT_SIGNAL_BASE + received[0]
    return EXIT_OK


def report_rank_failure(failed: RunFailed) -> int:
    """Print another rank's failure: its traceback (no terminal shows that rank's output) and one line."""
    from .cli import EXIT_CONFIG, EXIT_FAILED, _fail

    if failed.traceback:
        print(f"traceback of rank {failed.rank}:\n{failed.traceback.rstrip()}", file=sys.stderr)
    return _fail(failed.message, EXIT_CONFIG if failed.user_error else EXIT_FAILED)


def report_quietly(exc: BaseException) -> int:
    """The exit code of a failure, unprinted: rank 0 prints the run's first failure, whichever rank had it."""
    from .cli import EXIT_CONFIG, EXIT_FAILED
    from ptviz.engine.errors import UserError

    return EXIT_CONFIG if isinstance(exc, UserError) else EXIT_FAILED


def _tell_agent(exc: BaseException) -> None:
    """Under torchrun, leave the failure in the error file its agent reads (it names the failing rank)."""
    if not os.environ.get("TORCHELASTIC_ERROR_FILE"):
        return
    try:
        from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

        ErrorHandler().record_exception(exc)
    except Exception:  # noqa: BLE001 - the agent then reports the exit code alone
        pass


def _stop_progress(progress: Progress) -> None:
    if not progress.live.is_started:
        return
    try:
        progress.stop()
    except OSError:
        _silence_output()


def _silence_output() -> None:
    """Point stdout, and stderr when it shares stdout's file, at /dev/null: output left for a gone pipe or
    terminal would fail the exit, while a separate stderr (`2>err.log`) still gets the last word."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    streams = [sys.stdout]
    try:
        if os.path.sameopenfile(sys.stdout.fileno(), sys.stderr.fileno()):
            streams.append(sys.stderr)
    except OSError:
        streams.append(sys.stderr)
    for stream in streams:
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
