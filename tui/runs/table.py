"""The runs table: one row per run, a colour mark on the runs drawn in the overlay, forks under their parent."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable

from ptviz.engine.storage.catalog import RunRecord

from .columns import Column

MARK = "●"


class RunsTable(DataTable):
    """Shows rows the Runs tab hands it; keeps the cursor on the same run across updates."""

    DEFAULT_CSS = """
    RunsTable { height: 1fr; scrollbar-size-vertical: 1; scrollbar-size-horizontal: 1; }
    """

    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns_shown: list[tuple] = []
        self._rows_shown: list[tuple[str, tuple]] = []
        self._column_keys: list = []
        self._cache: dict = {}  # run -> (what its row was made from, the record, cells, their signature)

    def _update_dimensions(self, new_rows) -> None:
        super()._update_dimensions(new_rows)
        self.fit_whole_columns()

    def _update_column_widths(self, updated_cells) -> None:
        super()._update_column_widths(updated_cells)
        self.fit_whole_columns()

    def fit_whole_columns(self) -> None:
        """End the table at the last column that fits whole beside the room it has; the rest scroll into view.

        A column cut at the edge showed a misleading part of what it says (at 80x24 the epoch column's title
        as "ep" over blank cells, its numbers being right-aligned; a loss of 0.0824 as "0")."""
        room = self.parent.size.width if isinstance(self.parent, Widget) else 0
        if not room:
            return
        bar = self.scrollbar_size_vertical if self.show_vertical_scrollbar else 0
        widths = [column.get_render_width(self) for column in self.ordered_columns]
        used = 0
        for width in widths:
            if used + width > room - bar:
                break
            used += width
        width = "1fr" if used == sum(widths) or not used else used + bar
        if str(self.styles.width) != str(width):
            self.styles.width = width

    @property
    def cursor_path(self) -> Path | None:
        """The run under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return Path(key) if key else None

    def show(self, rows: list[tuple[RunRecord, int]], columns: list[Column], colors: dict[Path, str],
             sort_key: str | None, reverse: bool) -> None:
        """Display `rows` (record, tree depth) in `columns`; selected runs carry their overlay colour."""
        titles = [Text("")] + [self._title(c, sort_key, reverse) for c in columns]
        title_sig = [_signature(t) for t in titles]
        cells, sigs = [], []
        if len(self._cache) > 2 * len(rows) + 100:
            self._cache.clear()
        for r, depth in rows:
            key = (id(r), depth, colors.get(r.path), id(columns))
            cached = self._cache.get(r.path)
            if cached is None or cached[0] != key or cached[1] is not r:  # records are replaced, never changed
                row = self._cells(r, depth, columns, colors.get(r.path))
                cached = self._cache[r.path] = (key, r, row, tuple(_signature(c) for c in row))
            cells.append((str(r.path), cached[2]))
            sigs.append((str(r.path), cached[3]))
        if title_sig == self._columns_shown and [k for k, _ in sigs] == [k for k, _ in self._rows_shown]:
            for (key, row), (_, new), (_, old) in zip(cells, sigs, self._rows_shown):
                for i, (a, b) in enumerate(zip(new, old)):
                    if a != b:
                        self.update_cell(key, self._column_keys[i], row[i])
            self._rows_shown = sigs
            return
        cursor = self.cursor_path
        self.clear(columns=title_sig != self._columns_shown)
        if title_sig != self._columns_shown:
            self._column_keys = [self.add_column(title, key=f"c{i}") for i, title in enumerate(titles)]
        for key, row in cells:
            self.add_row(*row, key=key)
        self._columns_shown, self._rows_shown = title_sig, sigs
        keys = [k for k, _ in cells]
        if cursor is not None and str(cursor) in keys:
            self.move_cursor(row=keys.index(str(cursor)), animate=False)

    @staticmethod
    def _title(column: Column, sort_key: str | None, reverse: bool) -> Text:
        arrow = (" ▼" if reverse else " ▲") if column.key == sort_key else ""
        return Text(column.title + arrow, justify="right" if column.numeric else "left",
                    style="bold" if arrow else "")

    @staticmethod
    def _cells(r: RunRecord, depth: int, columns: list[Column], color: str | None) -> tuple:
        out: list[Text] = [Text(MARK, style=f"bold {color}") if color else Text(" ")]
        for c in columns:
            text = c.text(r)
            if c.key == "name" and depth:
                text = "  " * (depth - 1) + "└ " + text
            style = ""
            if c.key == "state":
                style = {"running": "bold green", "failed": "red", "diverged": "red", "interrupted": "yellow",
                         "": "dim"}.get(r.state, "")
            elif c.key == "problem":
                style = "yellow"
            elif c.key.startswith("set:"):
                style = "bold cyan"
            out.append(Text(text, style=style, justify="right" if c.numeric else "left", no_wrap=True))
        return tuple(out)


def _signature(text: Text) -> tuple:
    """What a cell shows, comparable (Text equality ignores the base style)."""
    return text.plain, str(text.style), text.justify
