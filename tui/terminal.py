"""What the terminal can draw, asked once before Textual takes it over, and the keys typed meanwhile.

textual-image asks the terminal about graphics and its cell size when it is imported, each question with a
0.1 s timeout. Over SSH or on a busy machine an answer came late and Textual read it as keys (the answer to
Primary Device Attributes, `ESC [ ? 1 ; 2 c`, types `[ ? 1 ; 2 c`: `?` opened the help), and a key typed
while it waited was swallowed. Here every question goes out at once, followed by Primary Device Attributes,
which every terminal answers, and answers last: its answer ends the wait however slow the link, and
whatever else arrives meanwhile is what the user typed, handed to the app as keys once it runs.
"""

from __future__ import annotations

import os
import re
import select
import sys
import time
from dataclasses import dataclass

# Kitty graphics protocol query (a 1×1 RGB image, query only), cell size in pixels, then Primary Device
# Attributes. The kitty query's id is fixed: its answer names it, and nothing else uses id 31.
QUESTIONS = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\" "\x1b[16t" "\x1b[c"
KITTY_ANSWER = re.compile(r"\x1b_Gi=31;([^\x1b]*)\x1b\\")
CELL_ANSWER = re.compile(r"\x1b\[6;(\d+);(\d+)t")
ATTRIBUTES_ANSWER = re.compile(r"\x1b\[\?([\d;]*)c")
ANSWER_TIMEOUT = 1.0  # seconds; only a terminal that ignores Device Attributes ever waits this long


@dataclass(frozen=True)
class TerminalInfo:
    """The terminal's answers, and what was typed while waiting for them."""

    answered: bool = False  # the terminal answered Device Attributes: the answers below are complete
    sixel: bool = False
    kitty_graphics: bool = False
    cell_pixels: tuple[int, int] | None = None  # (width, height) of one cell
    typed: str = ""


_asked: TerminalInfo | None = None  # what probe() found in this process


def asked() -> TerminalInfo | None:
    """What the probe found, or None when it has not run (no terminal, or a test)."""
    return _asked


def probe(timeout: float = ANSWER_TIMEOUT) -> TerminalInfo | None:
    """Ask the terminal on stdin/stdout what it can draw; None when they are not a terminal."""
    global _asked
    if not (sys.stdin and sys.stdout and sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    import termios
    import tty

    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(fd_in)
    received = ""
    try:
        # Keys typed before now waited in the line buffer; without line mode they can be read.
        tty.setcbreak(fd_in, termios.TCSANOW)
        os.write(fd_out, QUESTIONS.encode())
        deadline = time.monotonic() + timeout
        while not ATTRIBUTES_ANSWER.search(received):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd_in], [], [], left)[0]:
                break
            chunk = os.read(fd_in, 4096)
            if not chunk:
                break
            received += chunk.decode(errors="replace")
    finally:
        termios.tcsetattr(fd_in, termios.TCSANOW, saved)
    _asked = read_answers(received)
    return _asked


def read_answers(received: str) -> TerminalInfo:
    """Split what the terminal sent into its answers and the keys typed around them."""
    attributes = ATTRIBUTES_ANSWER.search(received)
    kitty = KITTY_ANSWER.search(received)
    cell = CELL_ANSWER.search(received)
    typed = received
    for answer in (attributes, kitty, cell):
        if answer:
            typed = typed.replace(answer.group(0), "", 1)
    return TerminalInfo(
        answered=attributes is not None,
        sixel=attributes is not None and "4" in attributes.group(1).split(";"),
        kitty_graphics=kitty is not None and kitty.group(1) == "OK",
        cell_pixels=(int(cell.group(2)), int(cell.group(1))) if cell and int(cell.group(1)) else None,
        typed=typed,
    )


def typed_keys(text: str) -> list:
    """Textual key events for text typed at the terminal (escape sequences such as arrows included)."""
    from textual import events

    if not text:
        return []
    try:
        from textual._xterm_parser import XTermParser  # Textual's own reading of terminal input

        parser = XTermParser()
        found = list(parser.feed(text)) + list(parser.feed(""))  # the empty feed ends a pending escape
        return [e for e in found if isinstance(e, events.Key)]
    except Exception:  # noqa: BLE001 - a Textual without that parser: plain characters still work
        from textual.keys import _character_to_key

        return [events.Key(c if c.isalnum() else _character_to_key(c), c) for c in text if c.isprintable()]
