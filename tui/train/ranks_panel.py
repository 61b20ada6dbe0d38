"""Ranks panel: one row per process of a multi-rank run (host, device, step, step time and its ratio to the
median, data wait, memory), from the heartbeats rank 0 gathers; hidden for a single process."""

from __future__ import annotations

import statistics

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ptviz.engine.events import RanksReported, RunStarted

from .device_stats import human_bytes

STRAGGLER = 1.2  # a rank this much slower than the median step is marked


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:.0f}"


def render_ranks(report: RanksReported) -> Table:
    """The table of one heartbeat report: host milliseconds per step, their ratio to the median, data wait."""
    t = Table(box=None, padding=(0, 1, 0, 0), expand=False, header_style="bold")
    for name, justify in (("#", "right"), ("host", "left"), ("device", "left"), ("step", "right"),
                          ("ms/step", "right"), ("÷ med", "right"), ("wait", "right"), ("memory", "right")):
        t.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis")
    running = [s for s in report.step_seconds if s > 0]
    median = statistics.median(running) if running else 0.0
    for rank, host in enumerate(report.hosts):
        seconds = report.step_seconds[rank]
        ratio = seconds / median if median and seconds else None
        slow = ratio is not None and ratio >= STRAGGLER
        t.add_row(str(rank), host, report.devices[rank], f"{report.steps[rank]:,}",
                  _ms(seconds) if seconds else "-",
                  Text(f"{ratio:.2f}", "bold red" if slow else "") if ratio is not None else "-",
                  _ms(report.data_wait[rank]) if seconds else "-",
                  human_bytes(report.memory[rank]) if report.memory[rank] else "-")
    return t


class RanksPanel(Static):
    """Shows the newest RanksReported with the next frame; appears once a run with several ranks reports."""

    DEFAULT_CSS = """
    RanksPanel { display: none; width: 3fr; height: 100%; border: round $panel-lighten-2; padding: 0 1;
                 border-title-color: $text-muted; }
    RanksPanel.-shown { display: block; }
    """

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.border_title = "ranks"
        self.report: RanksReported | None = None
        self._shown: RanksReported | None = None

    def ingest(self, event: object) -> None:
        """Keep the newest heartbeat report; a new single-process run hides the panel."""
        if isinstance(event, RanksReported):
            self.report = event
            self.set_class(True, "-shown")
        elif isinstance(event, RunStarted) and event.world_size <= 1:
            self.report = None
            self.set_class(False, "-shown")

    def flush(self) -> bool:
        """Show the newest report if it is not shown yet (the app's frame clock calls this)."""
        if self.report is None or self.report is self._shown:
            return False
        self._shown = self.report
        world = len(self.report.hosts)
        self.border_title = f"ranks ({world}, paused)" if self.report.paused else f"ranks ({world})"
        self.update(render_ranks(self.report))
        return True
