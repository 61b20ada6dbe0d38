"""The text a terminal shows, kept from the bytes an app writes: enough of a terminal for Textual's output.

Textual sends only the cells that changed, each run placed with a cursor move, so text looked for in the
byte stream may never pass as one run (typing a 5 after "0.5" sends the 5 alone). A `Screen` applies the
cursor moves, erases and printable text to a grid of cells and says what its rows read now; colours and
other styles are dropped. Sequences it does not know are skipped.
"""

from __future__ import annotations

import re

TOKENS = re.compile(
    rb"\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])"  # CSI: cursor moves, erases, styles, modes
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, clipboard
    rb"|\x1b[P_^][^\x1b]*\x1b\\"  # DCS, APC, PM: graphics and queries
    rb"|\x1b[()][0-9A-Za-z]|\x1b[=>78cDEHM]"  # character sets and single-letter escapes
    rb"|(?P<control>[\x00-\x1a\x1c-\x1f\x7f])"
    rb"|(?P<text>[^\x00-\x1f\x7f]+)"
)
WIDE = re.compile("[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60"
                  "\uffe0-\uffe6\U0001f300-\U0001faff\U00020000-\U0003fffd]")  # two cells wide
STYLES = re.compile(rb"\x1b\[[0-9;:]*m")  # colours and attributes: dropped in one pass, before the rest
INCOMPLETE = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*\x1b?|[P_^][^\x1b]*\x1b?|[()])?\Z")


class Screen:
    """A grid of `columns`×`rows` cells that `feed` updates; `text()` is what it shows, row by row."""

    def __init__(self, columns: int, rows: int):
        self.columns, self.rows = columns, rows
        self.cells = [[" "] * columns for _ in range(rows)]
        self.x = self.y = 0
        self._pending = b""  # an escape sequence cut by the end of the last chunk
        self._partial = b""  # a UTF-8 character cut likewise

    def feed(self, data: bytes) -> None:
        """Apply what the app wrote."""
        data = self._pending + data
        cut = INCOMPLETE.search(data)
        self._pending, data = (data[cut.start():], data[:cut.start()]) if cut else (b"", data)
        data = STYLES.sub(b"", data)
        for match in TOKENS.finditer(data):
            if match.group("text") is not None:
                self._write(match.group("text"))
            elif match.group("control") is not None:
                self._control(match.group("control"))
            elif match.group("final") is not None:
                self._csi(match.group("params"), match.group("final"))

    def text(self) -> str:
        """Every row, joined by newlines (trailing blanks kept: columns stay where they are)."""
        return "\n".join("".join(row) for row in self.cells)

    def _write(self, raw: bytes) -> None:
        raw = self._partial + raw
        text = raw.decode("utf-8", errors="ignore")
        complete = len(text.encode("utf-8"))
        self._partial = raw[complete:] if complete < len(raw) else b""
        if not WIDE.search(text):  # the usual case: one cell a character, written as one slice
            row, end = self.cells[self.y] if 0 <= self.y < self.rows else None, self.x + len(text)
            if row is not None and self.x < self.columns:
                row[self.x:min(end, self.columns)] = text[:self.columns - self.x]
            self.x = end
            return
        for char in text:
            wide = WIDE.match(char) is not None
            if 0 <= self.y < self.rows and 0 <= self.x < self.columns:
                self.cells[self.y][self.x] = char
                if wide and self.x + 1 < self.columns:
                    self.cells[self.y][self.x + 1] = ""
            self.x += 2 if wide else 1

    def _control(self, char: bytes) -> None:
        if char == b"\r":
            self.x = 0
        elif char == b"\n":
            self.y = min(self.rows - 1, self.y + 1)
        elif char == b"\x08":
            self.x = max(0, self.x - 1)

    def _csi(self, params: bytes, final: bytes) -> None:
        if params.startswith(b"?") or params.startswith(b">") or params.startswith(b"<"):
            return  # private modes: alternate screen, mouse, cursor visibility...
        numbers = [int(p) if p.isdigit() else 0 for p in params.split(b";")] if params else []
        first = numbers[0] if numbers else 0
        step = max(1, first)
        if final in b"Hf":
            self.y = min(self.rows - 1, max(0, (numbers[0] if numbers else 1) - 1))
            self.x = min(self.columns - 1, max(0, (numbers[1] if len(numbers) > 1 else 1) - 1))
        elif final == b"A":
            self.y = max(0, self.y - step)
        elif final == b"B":
            self.y = min(self.rows - 1, self.y + step)
        elif final == b"C":
            self.x = min(self.columns - 1, self.x + step)
        elif final == b"D":
            self.x = max(0, self.x - step)
        elif final == b"G":
            self.x = min(self.columns - 1, step - 1)
        elif final == b"K":
            row = self.cells[self.y]
            start, end = {0: (self.x, self.columns), 1: (0, self.x + 1), 2: (0, self.columns)}.get(first, (0, 0))
            row[start:end] = [" "] * (end - start)
        elif final == b"J":
            if first == 2 or first == 3:
                self.cells = [[" "] * self.columns for _ in range(self.rows)]
            elif first == 0:
                self.cells[self.y][self.x:] = [" "] * (self.columns - self.x)
                for y in range(self.y + 1, self.rows):
                    self.cells[y] = [" "] * self.columns
        elif final == b"X":
            row = self.cells[self.y]
            end = min(self.columns, self.x + step)
            row[self.x:end] = [" "] * (end - self.x)
