"""The Runs tab: every run under the runs folder in a table, the selected ones overlaid, diffed, noted, forked."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

from ptviz.engine import config as cfgmod
from ptviz.engine.storage.catalog import Catalog, RunRecord, differing_settings, tree_order
from ptviz.engine.storage.notes import write_notes

from .columns import Column, columns_for, sorted_records, to_csv
from .curves import RunCurves, poll_all
from .diff import DiffScreen
from .filter import matches
from .lr_column import with_lr
from .fork import ForkScreen
from .notes import NotesScreen
from .overlay import AXES, PALETTE, OverlayPane, OverlayRun, OverlayState, run_labels
from .table import RunsTable

POLL_SECONDS = 1.0  # how often the folder and the drawn runs' logs are looked at while the tab shows


class FilterInput(Input):
    """The filter line: enter keeps the filter, escape clears it; either returns to the table."""

    BINDINGS = [Binding("escape", "clear", "clear filter", show=False)]

    def action_clear(self) -> None:
        self.value = ""
        self.post_message(Input.Submitted(self, ""))


class RunsTab(Vertical):
    """Lists, compares and branches the runs in the configured runs folder."""

    DEFAULT_CSS = """
    RunsTab { height: 1fr; }
    RunsTab #runs-filter { height: 1; border: none; padding: 0 1; background: $boost; display: none; }
    RunsTab #runs-filter.-shown { display: block; }
    RunsTab #runs-filter:focus { background: $accent 30%; }
    RunsTab RunsTable { height: auto; max-height: 40%; min-height: 4; }
    RunsTab #runs-status { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    RunsTab OverlayPane { height: 1fr; min-height: 8; }
    """
    # Listed in the tab's own status line and in help, not in the footer, which keeps the cockpit's keys.
    BINDINGS = [
        Binding("space", "toggle_select", "Select", show=False),
        Binding("a", "select_all", "All", show=False),
        Binding("d", "diff", "Diff", show=False),
        Binding("f", "fork", "Fork", show=False),
        Binding("n", "note", "Note", show=False),
        Binding("slash", "filter", "Filter", show=False),
        Binding("less_than_sign", "sort(-1)", "Sort<", show=False),
        Binding("greater_than_sign", "sort(1)", "Sort>", show=False),
        Binding("r", "reverse", "Reverse", show=False),
        Binding("t", "axis", "x axis", show=False),
        Binding("v", "chart_page", "Charts", show=False),
        Binding("y", "log_y", "Log y", show=False),
        Binding("C", "export_csv", "CSV", show=False),
        Binding("G", "export_svg", "SVG", show=False),
    ]
    HINTS = ("space select", "d diff", "f fork", "n note", "/ filter", "< > sort", "t x axis", "C csv", "G svg")

    @dataclass
    class RunsRead(Message):
        """The folder and the drawn runs' logs were read (on a worker thread)."""

        records: list[RunRecord]
        curves_changed: bool

    @dataclass
    class ForkRequested(Message):
        """The user checked a fork in the Runs view; the app trains it."""

        plan: Any

    def __init__(self, config: cfgmod.RunConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config  # the app's working copy: output.runs_dir says which folder to show
        self.folder = Path(config.output.runs_dir or ".")
        self.catalog = Catalog(self.folder)
        self.records: list[RunRecord] = []
        self.shown: list[RunRecord] = []  # rows as displayed (filtered, ordered)
        self.columns: list[Column] = columns_for([])
        self._setting_paths: list[str] = []
        self.selected: dict[Path, str] = {}  # run -> its colour, in selection order
        self.sort_key: str | None = None  # None: parents and their forks in tree order
        self.reverse = False
        self.filter_text = ""
        self.curves: dict[Path, RunCurves] = {}
        self.state = OverlayState()
        self.loaded = False  # the folder has been read once
        self._reading = threading.Lock()
        self._again = False  # a read was asked for while one was going

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder="filter: words, field=value (lr=0.01), #tag, a state; enter keeps, escape clears",
                          id="runs-filter")
        yield RunsTable(id="runs-table")
        yield Static("", id="runs-status")
        yield OverlayPane(self.state, id="runs-overlay")

    def on_mount(self) -> None:
        self.set_interval(POLL_SECONDS, self.poll)
        self._show_status()

    def on_show(self) -> None:
        self.poll()

    @property
    def table(self) -> RunsTable:
        """The runs table."""
        return self.query_one(RunsTable)

    @property
    def overlay(self) -> OverlayPane:
        """The overlay charts."""
        return self.query_one(OverlayPane)

    def set_compact(self, compact: bool) -> None:
        """One chart at a time on a small terminal."""
        self.overlay.set_class(compact, "-compact")

    # ------------------------------------------------------------------ reading

    def poll(self) -> None:
        """Read the folder and the drawn runs' new log lines on a worker, while the tab is on screen."""
        if not self.is_on_screen and self.loaded:
            return
        folder = Path(self.config.output.runs_dir or ".")
        if folder != self.folder:
            self.folder, self.catalog, self.selected, self.curves = folder, Catalog(folder), {}, {}
            self._overlay_changed()
        self._read(self.catalog, list(self.curves.values()))

    @work(thread=True, group="runs-read", exit_on_error=False)
    def _read(self, catalog: Catalog, curves: list[RunCurves]) -> None:
        """Refresh the catalog and poll each drawn run's log; one reader at a time, and a request made while
        one reads makes it read once more (with the runs drawn by then) rather than wait for the next poll."""
        if not self._reading.acquire(blocking=False):
            self._again = True
            return
        try:
            while True:
                self._again = False
                catalog.refresh()
                changed = any(poll_all(curves))
                for c in curves:
                    catalog.set_found(c.run_dir, c.problems)
                self.post_message(self.RunsRead(catalog.rows(), changed))
                if not self._again:
                    break
                curves = list(self.curves.values())
        finally:
            self._reading.release()

    @on(RunsRead)
    def _runs_read(self, message: RunsRead) -> None:
        message.stop()
        first = not self.loaded
        self.loaded = True
        if message.records != self.records:
            self.records = message.records
            known = {r.path for r in self.records}
            for path in [p for p in self.selected if p not in known]:
                del self.selected[path]
            self._show_table()
            self._overlay_changed()
        elif first:
            self._show_table()
        if message.curves_changed:
            self._show_status()
            self.redraw()  # new data draws now, not at the next frame (which waits longer after a costly one)

    def _show_table(self) -> None:
        rows = [(r, d) for r, d in tree_order(self.records) if matches(r, self.filter_text)]
        if self.sort_key is not None:
            column = next((c for c in self.columns if c.key == self.sort_key), None)
            if column is not None:
                rows = [(r, 0) for r in sorted_records([r for r, _ in rows], column, self.reverse)]
        self.shown = [r for r, _ in rows]
        paths = with_lr(differing_settings(self.shown), self.shown)
        if paths != self._setting_paths:  # the same column objects otherwise, so the table reuses its rows
            self._setting_paths, self.columns = paths, columns_for(paths)
        if self.sort_key is not None and self.sort_key not in {c.key for c in self.columns}:
            self.sort_key = None
        self.table.show(rows, self.columns, self.selected, self.sort_key, self.reverse)
        self._show_status()

    def _show_status(self) -> None:
        n, shown = len([r for r in self.records if r.is_run]), len(self.shown)
        parts = [f"{self.folder}: {n} run{'s' if n != 1 else ''}" + (f", {shown} shown" if shown != len(self.records) else "")]
        if not self.records and self.loaded:
            parts = [f"no runs in {self.folder} yet: train one (s) and it appears here"]
        if self.selected:
            parts.append(f"{len(self.selected)} selected")
        sort = next((c.title for c in self.columns if c.key == self.sort_key), None)
        if sort:
            parts.append(f"sort: {sort} {'▼' if self.reverse else '▲'}")
        if self.state.axis != "step":
            parts.append(f"x: {self.state.axis}")
        if self.filter_text:
            parts.append(f"filter: {self.filter_text}")
        text = " · ".join(parts)
        room = self.size.width - 2 if self.size.width else 200
        for hint in self.HINTS:  # as many keys as fit, then where to find the rest
            if len(text) + len(hint) + len(" · ") + len(" · ? keys") > room:
                text += " · ? keys"
                break
            text += " · " + hint
        self.query_one("#runs-status", Static).update(text)

    def on_resize(self) -> None:
        self._show_status()
        self.table.fit_whole_columns()  # the room its columns fit in is this tab's width

    # ------------------------------------------------------------------ overlay

    def _overlay_changed(self) -> None:
        """Rebuild the list of drawn runs: the selected ones, or the run under the cursor when none is."""
        by_path = {r.path: r for r in self.records}
        paths = [p for p in self.selected if p in by_path]
        if not paths:
            cursor = self.table.cursor_path
            paths = [cursor] if cursor is not None and cursor in by_path and by_path[cursor].is_run else []
        for path in [p for p in self.curves if p not in paths]:
            del self.curves[path]
        new = [p for p in paths if p not in self.curves]
        for path in new:
            self.curves[path] = RunCurves(path)
        records = [r for r, _ in tree_order([by_path[p] for p in paths])]  # a fork after its parent: on top
        labels = run_labels(records)
        runs: dict[Path, OverlayRun] = {}
        for r in records:
            lineage = r.lineage
            parent = next((runs[p] for p in runs if lineage and _same(p, lineage.parent)), None)
            runs[r.path] = OverlayRun(r.path, labels[r.path], self.selected.get(r.path, PALETTE[0]),
                                      self.curves[r.path], lineage.step if lineage else None,
                                      lineage.epoch if lineage else None, parent)
        self.state.runs = list(runs.values())
        self.state.changed()
        if new:
            self.poll()

    def redraw(self) -> int:
        """Frame step: replot the overlay charts on screen that changed."""
        return self.overlay.redraw() if self.is_on_screen else 0

    def run_started(self, run_dir: str | None) -> None:
        """This cockpit started training in `run_dir`: select it, so it is drawn as it trains."""
        if not run_dir:
            return
        path = Path(run_dir)
        if not _same(path.parent, str(self.folder)):
            return
        key = next((p for p in [r.path for r in self.records] if _same(p, run_dir)), self.folder / path.name)
        if key not in self.selected:
            self.selected[key] = self._free_color()
        self._overlay_changed()

    # ------------------------------------------------------------------ actions

    def _cursor_record(self) -> RunRecord | None:
        path = self.table.cursor_path
        return next((r for r in self.records if r.path == path), None)

    def _free_color(self) -> str:
        used = set(self.selected.values())
        return next((c for c in PALETTE if c not in used), PALETTE[len(self.selected) % len(PALETTE)])

    def action_toggle_select(self) -> None:
        """Add the run under the cursor to the overlay, or take it out."""
        record = self._cursor_record()
        if record is None or not record.is_run:
            return
        if record.path in self.selected:
            del self.selected[record.path]
        else:
            self.selected[record.path] = self._free_color()
        self._overlay_changed()  # first: its read starts before the table's repaint is done
        self._show_table()

    def action_select_all(self) -> None:
        """Select every run shown, or clear the selection when all of them already are."""
        runs = [r.path for r in self.shown if r.is_run]
        if runs and all(p in self.selected for p in runs):
            self.selected.clear()
        else:
            for path in runs:
                if path not in self.selected:
                    self.selected[path] = self._free_color()
        self._overlay_changed()  # first: its read starts before the table's repaint is done
        self._show_table()

    @on(DataTable.RowHighlighted)
    def _cursor_moved(self, event: DataTable.RowHighlighted) -> None:
        if not self.selected:
            self._overlay_changed()

    def action_sort(self, direction: int) -> None:
        """Sort by the next (or previous) column; before the first column the table is a tree again."""
        keys = [None, *(c.key for c in self.columns)]
        i = keys.index(self.sort_key) if self.sort_key in keys else 0
        self.sort_key = keys[(i + direction) % len(keys)]
        self.reverse = self.sort_key in ("best", "last", "when", "step", "epoch", "time")  # biggest first
        self._show_table()

    def sort_by(self, key: str | None, reverse: bool = False) -> None:
        """Sort by the column `key` (None: tree order)."""
        self.sort_key, self.reverse = key, reverse
        self._show_table()

    def action_reverse(self) -> None:
        """Reverse the sort order."""
        self.reverse = not self.reverse
        self._show_table()

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        index = event.column_index - 1  # the first column is the selection mark
        if 0 <= index < len(self.columns):
            key = self.columns[index].key
            self.sort_by(key, not self.reverse if key == self.sort_key else False)

    def action_filter(self) -> None:
        """Type a filter (words, field=value, #tag)."""
        box = self.query_one(FilterInput)
        box.add_class("-shown")
        box.focus()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.filter_text = event.value.strip()
        self._show_table()

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        event.stop()
        self.filter_text = event.value.strip()
        self.query_one(FilterInput).set_class(bool(self.filter_text), "-shown")
        self._show_table()
        self.table.focus()

    def action_axis(self) -> None:
        """x axis: step, then epoch, then training time."""
        self.state.axis = AXES[(AXES.index(self.state.axis) + 1) % len(AXES)]
        self.state.changed()
        self._show_status()

    def action_chart_page(self) -> None:
        self.overlay.next_page()

    def action_log_y(self) -> None:
        on = self.overlay.toggle_log_y()
        self.notify(f"overlay: log y {'on' if on else 'off'}", timeout=1.5)

    def action_diff(self) -> None:
        """Diff two runs: the two selected, or the cursor's run against the selected one or its parent."""
        pair = self._pair()
        if pair is None:
            self.notify("select two runs (space) to compare, or put the cursor on a fork", severity="warning")
            return
        self.app.push_screen(DiffScreen(*pair))

    def _pair(self) -> tuple[RunRecord, RunRecord] | None:
        by_path = {r.path: r for r in self.records}
        chosen = [by_path[p] for p in self.selected if p in by_path]
        cursor = self._cursor_record()
        if len(chosen) == 2:
            return chosen[0], chosen[1]
        if len(chosen) == 1 and cursor is not None and cursor.path != chosen[0].path and cursor.is_run:
            return chosen[0], cursor
        if cursor is not None and cursor.lineage is not None:
            parent = next((r for r in self.records if _same(r.path, cursor.lineage.parent)), None)
            if parent is not None:
                return parent, cursor
        return None

    def action_note(self) -> None:
        """Edit the note and tags of the run under the cursor."""
        record = self._cursor_record()
        if record is None or not record.is_run:
            return

        def saved(notes) -> None:
            if notes is not None:
                try:
                    write_notes(record.path, notes)
                except OSError as exc:
                    self.notify(f"note not saved: {exc}", severity="error")
                self.poll()

        self.app.push_screen(NotesScreen(record.name, record.notes), saved)

    def action_fork(self) -> None:
        """Branch the run under the cursor from one of its checkpoints."""
        from ptviz.engine.fork import checkpoint_choices

        record = self._cursor_record()
        if record is None or not record.is_run:
            return
        choices = checkpoint_choices(record.path)
        if not choices:
            self.notify(f"{record.name} has no checkpoint to branch from", severity="warning")
            return

        def chosen(plan) -> None:
            if plan is not None:
                if record.path not in self.selected:  # drawn with the fork, which is selected when it starts
                    self.selected[record.path] = self._free_color()
                    self._show_table()
                    self._overlay_changed()
                self.post_message(self.ForkRequested(plan))

        self.app.push_screen(ForkScreen(record.path, choices), chosen)

    def action_export_csv(self) -> None:
        """Write the table as shown to a CSV file in the runs folder."""
        path = self.folder / f"runs-{time.strftime('%Y%m%d-%H%M%S')}.csv"
        try:
            path.write_text(to_csv(self.shown, self.columns), encoding="utf-8")
        except OSError as exc:
            self.notify(f"CSV not written: {exc}", severity="error")
            return
        self.notify(f"table written to {path}", timeout=4)

    def action_export_svg(self) -> None:
        """Save the screen, charts included, as an SVG file in the runs folder."""
        name = f"runs-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        try:
            path = self.app.save_screenshot(filename=name, path=str(self.folder))
        except OSError as exc:
            self.notify(f"SVG not written: {exc}", severity="error")
            return
        self.notify(f"screen saved to {path}", timeout=4)


def _same(path: Path, other: str) -> bool:
    try:
        return Path(path).resolve() == Path(other).resolve()
    except OSError:
        return str(path) == other
