"""Why a form field is wrong: at most two lines under the field, cut with an ellipsis, the whole in its tooltip."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

MAX_LINES = 2


class FieldReason(Widget):
    """The reason one field is invalid; a form mounts it only while there is one (a widget less per field)."""

    DEFAULT_CSS = """
    FieldReason { color: $error; height: auto; max-height: 2; }
    """

    def __init__(self, reason: str, **kwargs):
        super().__init__(**kwargs)
        self.reason = reason
        self.tooltip = reason  # whole, where the two lines had to cut it

    def show(self, reason: str) -> None:
        """Say another reason."""
        self.reason = reason
        self.tooltip = reason
        self.refresh()
        self._span_rows()

    def on_mount(self) -> None:
        self._span_rows()

    def on_resize(self) -> None:
        self._span_rows()

    def _span_rows(self) -> None:
        # The form's grid rows are one line each (no row's height to work out at every layout): a reason that
        # needs two lines spans two rows.
        width = self.content_size.width
        if not width and self.parent is not None:
            width = self.parent.scrollable_content_region.width - self.styles.padding.left
        self.styles.row_span = len(self._lines(width))

    def _lines(self, width: int) -> list[str]:
        """The reason as it fits in two lines of `width` cells (start names it whole)."""
        text = f"↑ {self.reason}"
        if width < 10:
            return [text]
        lines = [line.plain.rstrip() for line in Text(text).wrap(self.app.console, width)]
        if len(lines) <= MAX_LINES:
            return lines
        return [lines[0], lines[1][: width - 1].rstrip() + "…"]

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return min(MAX_LINES, len(self._lines(width)))

    def render(self) -> Text:
        return Text("\n".join(self._lines(self.content_size.width)))
