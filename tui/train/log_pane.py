"""The run log: epoch lines, checkpoints, warnings and errors with their tracebacks."""

from __future__ import annotations

import time
from collections import deque

from rich.markup import escape
from textual.events import Resize
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import RichLog

from ptviz.engine.events import (
    CheckpointSaved,
    EpochEnded,
    Evaluated,
    LrChanged,
    Notice,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
)

from .options_text import options_line


class LogPane(RichLog):
    """A scrolling log that formats engine events into lines."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; border: round $panel-lighten-2; border-title-color: $text-muted; }
    LogPane:focus { border: round $accent; }
    """

    # A write grows the virtual size, and Widget's virtual_size lays out the whole screen when it changes
    # (tens of ms on a large terminal, every frame of a run with short epochs). The log's own box does not
    # move: only its scrollbars need updating, and they ask for a layout themselves when they appear.
    virtual_size = Reactive(Size(0, 0), repaint=True)

    def watch_virtual_size(self, size: Size) -> None:
        self._scroll_update(size)

    def __init__(self, **kwargs):
        super().__init__(markup=True, wrap=True, max_lines=5000, highlight=False, min_width=20, **kwargs)
        self.border_title = "log"
        self.text_lines: list[str] = []  # plain text of everything logged, unwrapped
        self._waiting: list[str] = []  # lines not written yet
        self._written: deque[str] = deque(maxlen=5000)  # markup of the lines written, to wrap again
        self._wrapped_at = 0  # the content width the written lines were wrapped to

    def say(self, text: str, style: str = "", routine: bool = False) -> None:
        """Write one timestamped line (text is escaped; style is Rich markup).

        Every write grows the log, and that lays out the whole screen: a routine line (an epoch's summary,
        a checkpoint) waits for the app's next frame (`flush`, within a second), others are written at once.
        """
        stamp = time.strftime("%H:%M:%S")
        body = f"[{style}]{escape(text)}[/]" if style else escape(text)
        self._waiting.append(f"[dim]{stamp}[/] {body}")
        self.text_lines.append(f"{stamp} {text}")
        if not routine:
            self.flush()

    def flush(self) -> bool:
        """Write the lines waiting, all at once (the app's frame clock calls this).

        While the log is hidden (another tab is showing) it has no width to wrap to: lines keep waiting.
        """
        if not self._waiting or self._hidden():
            return False
        self._written.extend(self._waiting)
        self.write("\n".join(self._waiting))
        self._waiting.clear()
        self._wrapped_at = self.scrollable_content_region.width
        return True

    def _hidden(self) -> bool:
        return self._size_known and self.scrollable_content_region.width < self.min_width

    def on_resize(self, event: Resize) -> None:
        """A log wraps lines when it writes them: a new width (terminal resized, tab shown) wraps them again."""
        width = self.scrollable_content_region.width
        if self._hidden() or not self._written or width == self._wrapped_at:
            return
        at_end = self.scroll_y >= self.max_scroll_y
        self.clear()
        self.write("\n".join(self._written), scroll_end=at_end)
        self._wrapped_at = width

    def ingest(self, event: object) -> None:
        """Log what matters about one engine event."""
        if isinstance(event, RunStarted):
            c = event.config
            what = "resumed" if event.start_step else "started"
            title = f"task {event.task}" if event.task else f"{c['model']['name']} on {c['data']['dataset']}"
            self.say(f"{what}: {title} ({event.train_size:,} train / "
                     f"{event.test_size:,} test), {event.params_total:,} parameters "
                     f"({event.params_trainable:,} trainable) on {event.device_name}", "bold")
            if event.run_dir:
                self.say(f"run directory: {event.run_dir}", "dim")
            if options := options_line(c):
                self.say(f"options: {options}", "dim")
        elif isinstance(event, EpochEnded):
            if event.test_accuracy is not None:
                test = f", test accuracy {event.test_accuracy:.2%}"
            else:
                test = f", test loss {event.test_loss:.4f}" if event.test_loss is not None else ""
            test += "".join(f", test {k} {v:.4g}" for k, v in event.test_metrics.items())
            if event.ema_test_accuracy is not None:  # the weight average's (train.ema_decay)
                test += f" (EMA {event.ema_test_accuracy:.2%})"
            elif event.ema_test_loss is not None:
                test += f" (EMA test loss {event.ema_test_loss:.4f})"
            train = f"train {event.train_accuracy:.2%}, " if event.train_accuracy is not None else ""
            train += "".join(f"train {k} {v:.4g}, " for k, v in event.train_metrics.items())
            self.say(f"Epoch {event.epoch}, Loss: {event.train_loss:.4f}{test} ({train}{event.seconds:.1f} s)",
                     routine=True)
        elif isinstance(event, Evaluated) and event.mid_epoch:
            acc = f", accuracy {event.accuracy:.2%}" if event.accuracy is not None else ""
            acc += "".join(f", {k} {v:.4g}" for k, v in event.metrics.items())
            self.say(f"evaluated at step {event.step:,}: {event.split} loss {event.loss:.4f}{acc}", routine=True)
        elif isinstance(event, CheckpointSaved):
            self.say(f"checkpoint ({event.reason}) at step {event.step:,}: {event.path}", "green", routine=True)
        elif isinstance(event, Paused):
            self.say(f"paused at step {event.step:,}", "yellow")
        elif isinstance(event, Resumed):
            self.say(f"resumed at step {event.step:,}", "green")
        elif isinstance(event, LrChanged):
            self.say(f"learning rate set to {event.lr:.4g} from step {event.step + 1:,}")
        elif isinstance(event, Notice):
            style = {"error": "bold red", "warning": "yellow"}.get(event.level, "")
            self.say(f"{event.level}: {event.text}", style)
        elif isinstance(event, RunFinished):
            how = f"stopped ({event.reason})" if event.stopped else "finished"
            if event.test_accuracy is not None:
                acc = f", test accuracy {event.test_accuracy:.2%}"
            else:
                acc = f", test loss {event.test_loss:.4f}" if event.test_loss is not None else ""
            acc += "".join(f", test {k} {v:.4g}" for k, v in event.test_metrics.items())
            self.say(f"{how} at step {event.step:,}{acc}. Training time: {event.seconds:.1f} s", "bold")
        elif isinstance(event, RunFailed):
            self.say(f"failed: {event.message}", "bold red")
            if event.traceback:
                self.say_details(event.traceback)

    def say_details(self, text: str) -> None:
        """Write a block such as a traceback, line by line, unstamped."""
        lines = text.rstrip().splitlines()
        self._waiting.extend(f"[red]{escape(line)}[/]" for line in lines)
        self.text_lines.extend(lines)
        self.flush()
