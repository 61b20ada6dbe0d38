"""The run log: epoch lines, checkpoints, warnings and errors with their tracebacks."""

from __future__ import annotations

import time
from pathlib import Path
from collections import deque

from rich.markup import escape
from rich.text import Text
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
    TrainableChanged,
)

from ..headless import epoch_line, event_line, metric_text, run_line
from .options_text import options_line


BREAK_AFTER = ("/", "-_.")  # where a word too long for a line (a path) breaks: after a slash, else these


def break_points(line: str, width: int) -> list[tuple[int, int]]:
    """(start, end) of each row `line` takes at `width` columns: rows end at a space, and a word longer than
    a row (a path) after a '/' (else '-', '_' or '.'), so no name is cut mid-way unless nothing else fits."""
    rows: list[tuple[int, int]] = []
    start = 0
    while len(line) - start > width:
        window = line[start:start + width + 1]
        space = window.rfind(" ")
        if space > 0:
            rows.append((start, start + space))
            start += space + 1
            continue
        cut = next((at for chars in BREAK_AFTER if (at := max(window[:width].rfind(c) for c in chars)) > 0), -1)
        end = start + (cut + 1 if cut > 0 else width)
        rows.append((start, end))
        start = end
    rows.append((start, len(line)))
    return rows


def wrapped(markup: str, width: int) -> Text:
    """A line of markup as rows of at most `width` cells, broken where break_points says."""
    text = Text.from_markup(markup)
    if width < 1 or text.cell_len <= width:
        return text
    return Text("\n").join(text[a:b] for a, b in break_points(text.plain, width))


class LogPane(RichLog):
    """A scrolling log that formats engine events into lines."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; border: round $panel-lighten-2; border-title-color: $text-muted;
              scrollbar-gutter: stable; }  /* the width lines are wrapped to stays when the scrollbar comes */
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
        self._tested_at: tuple[int, int] | None = None  # (step, epoch) of the last test accuracy logged
        self._saved: list[CheckpointSaved] = []  # the names of the last state saved
        self._saved_line = 0  # how many lines there were once its line was said (still the last one if equal)

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
        self._write(self._waiting)
        self._waiting.clear()
        return True

    def _write(self, lines, scroll_end: bool | None = None) -> None:
        """Write lines of markup, wrapped here (Rich would cut a path mid-name) to the width they are seen at."""
        width = self.scrollable_content_region.width
        self.write(Text("\n").join(wrapped(line, width) for line in lines), scroll_end=scroll_end)
        self._wrapped_at = width

    def _hidden(self) -> bool:
        return self._size_known and self.scrollable_content_region.width < self.min_width

    def on_resize(self, event: Resize) -> None:
        """A log wraps lines when it writes them: a new width (terminal resized, tab shown) wraps them again."""
        width = self.scrollable_content_region.width
        if self._hidden() or not self._written or width == self._wrapped_at:
            return
        at_end = self.scroll_y >= self.max_scroll_y
        self.clear()
        self._write(self._written, scroll_end=at_end)

    def ingest(self, event: object) -> None:
        """Log what matters about one engine event."""
        if isinstance(event, RunStarted):
            self._tested_at = None
            what = f"resumed at step {event.start_step:,}" if event.start_step else "started"
            self.say(f"{what} {run_line(event)}", "bold")
            if event.run_dir:
                self.say(f"run directory: {event.run_dir}", "dim")
            if options := options_line(event.config):
                self.say(f"options: {options}", "dim")
        elif isinstance(event, EpochEnded):
            if event.test_accuracy is not None or event.test_loss is not None:
                self._tested_at = (event.step, event.epoch)
            self.say(epoch_line(event), routine=True)
        elif isinstance(event, CheckpointSaved):  # epoch checkpoints too, which the console leaves unsaid
            self._checkpoint(event)
        elif isinstance(event, (Paused, Resumed, LrChanged, Evaluated, TrainableChanged)):
            line = event_line(event)
            if line is not None:
                style = {Paused: "yellow", Resumed: "green"}.get(type(event), "")
                self.say(line, style, routine=isinstance(event, Evaluated))
        elif isinstance(event, Notice):
            style = {"error": "bold red", "warning": "yellow"}.get(event.level, "")
            self.say(f"{event.level}: {event.text}", style)
        elif isinstance(event, RunFinished):
            how = "finished"
            if event.stopped:  # 'stopped by request' as it is; 'stopped (early stopping: ...)' for the others
                how = event.reason if event.reason.startswith("stopped ") else f"stopped ({event.reason})"
            acc = ""
            if event.test_accuracy is not None:
                acc = f"; test accuracy {event.test_accuracy:.2%}"
            elif event.test_loss is not None:
                acc = f"; test loss {event.test_loss:.4f}"
            if event.test_metrics:
                acc += f", {metric_text(event.test_metrics, 'test ')}"
            if acc and self._tested_at is not None:  # the figures are the last epoch's, not this step's
                step, epoch = self._tested_at
                acc += f" at step {step:,} (end of epoch {epoch})"
            self.say(f"{how} at step {event.step:,}{acc}. Training time: {event.seconds:.1f} s", "bold")
        elif isinstance(event, RunFailed):
            self.say(f"failed: {event.message}", "bold red")
            if event.traceback:
                self.say_details(event.traceback)

    def _checkpoint(self, event: CheckpointSaved) -> None:
        """One line per saved state: the other names it was linked to (last.pt, best.pt) join the first's line."""
        names = self._saved
        if (names and event.save_id and names[0].save_id == event.save_id and self._waiting
                and len(self.text_lines) == self._saved_line):
            names.append(event)  # its line is still waiting for the frame: say it again with this name
            self._waiting.pop()
            self.text_lines.pop()
        else:
            names[:] = [event]
        reasons = ", ".join(dict.fromkeys(e.reason for e in names))
        also = f" (also {', '.join(Path(e.path).name for e in names[1:])})" if len(names) > 1 else ""
        self.say(f"checkpoint ({reasons}) saved at step {event.step:,}: {names[0].path}{also}", "green",
                 routine=True)
        self._saved_line = len(self.text_lines)

    def say_details(self, text: str) -> None:
        """Write a block such as a traceback, line by line, unstamped."""
        lines = text.rstrip().splitlines()
        self._waiting.extend(f"[red]{escape(line)}[/]" for line in lines)
        self.text_lines.extend(lines)
        self.flush()
