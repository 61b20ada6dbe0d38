"""The help screen: every key binding of the cockpit, grouped."""

from __future__ import annotations

from functools import lru_cache

from rich.console import Console
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

TEXT_WIDTH = 70  # the box's 76 cells less its border, padding and scroll bar

KEYS = [  # what the help screen lists; keep in step with the bindings of the app and its panes
    ("Run", [("s", "start training (again, after a finish or failure)"), ("p / space", "pause or resume"),
             ("x", "stop (a checkpoint is saved)"), ("c", "save a checkpoint now"), ("e", "evaluate on the test set now")]),
    ("Learning rate", [("]", "double the learning rate"), ("[", "halve the learning rate"),
                       ("l", "set an exact learning rate"),
                       ("L", "learning-rate finder (idle, or on a paused run); enter applies its suggestion")]),
    ("Spikes", [("R", "roll a paused run back to its last good checkpoint (skip batches, lower the lr)")]),
    ("Charts", [("y", "log-scale y axis"), ("+ / -", "more / less smoothing of the step loss"),
                ("v", "next pair of charts (small terminals)")]),
    ("Panes", [("1 / 2 / 3 / 4", "Train, Data, Model and Runs tabs"), ("5", "focus the log"),
               ("6", "focus the device panel"),
               ("tab / shift+tab", "move between fields"), ("escape", "leave a form field so keys reach the cockpit")]),
    ("Data pane (when focused)", [("r", "re-roll the augmentations"), ("n / b", "next / previous images"),
                                  ("t", "right image: training or evaluation pipeline"), ("+ / -", "zoom"),
                                  ("o", "show the pipeline editor (keys go to it) / hide it"), ("a / d", "editor: add / remove a transform"),
                                  ("shift+up / down", "editor: move a transform"),
                                  ("escape", "editor: back to the step list, then to the images"),
                                  ("m", "compute mean and std from the training set into Normalize"),
                                  ("< / >", "Samples, Statistics, Evaluation views")]),
    ("Model pane (when focused)", [("< / > / *", "show one level less / more / everything"),
                                   ("left / right", "collapse / expand"),
                                   ("f / u", "freeze / unfreeze the selected module"),
                                   ("F / U", "freeze / unfreeze the whole model"),
                                   ("m", "type another model: name, file.py:factory or package.module:factory")]),
    ("Runs view (tab 4)", [("space / a", "draw the run in the overlay, or take it out / all or none"),
                           ("< / > / r", "sort by the previous / next column (before the first: forks under "
                                         "their parent) / reverse"),
                           ("/", "filter: words, field=value (lr=0.01), #tag; escape clears"),
                           ("d", "diff two runs: settings side by side, then their live changes"),
                           ("f", "fork the run: a new run from one of its checkpoints with settings changed"),
                           ("n", "note and tags of the run (kept in its folder)"),
                           ("t / v / y", "x axis: step, epoch, training time / next chart (small terminals) / log y"),
                           ("C / G", "write the table as CSV / the screen as SVG, into the runs folder")]),
    ("App", [("? / F1", "this help"),
             ("q / ctrl+q", "quit (asks first while training, then stops cleanly); when attached, detaches and "
                            "the run goes on")]),
]



@lru_cache(maxsize=4)
def laid_out(groups: tuple[tuple[str, tuple[tuple[str, str], ...]], ...], width: int = TEXT_WIDTH) -> Text:
    """The key table as styled text, laid out once: a Rich table measured again at every opening costs more than
    the rest of the screen."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for title, rows in groups:
        table.add_row("", "")
        table.add_row(f"[u]{title}[/u]", "")
        for keys, description in rows:
            table.add_row(keys, description)
    console = Console(width=width, color_system="truecolor", force_terminal=True)
    lines = console.render_lines(table, console.options.update_width(width), pad=False)
    return Text("\n").join(Text.assemble(*((seg.text, seg.style) for seg in line)) for line in lines)


class HelpScreen(ModalScreen[None]):
    """Lists the app's bindings; any of Escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 95%; height: auto; max-height: 90%;
                                  border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "close")]

    def __init__(self, groups: list[tuple[str, list[tuple[str, str]]]]):
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("[b]ptviz-tui keys[/b]  (Escape closes; when a form field has the cursor, "
                         "press Escape first so keys reach the cockpit)")
            yield Static(laid_out(tuple((title, tuple(rows)) for title, rows in self.groups)))

    def action_close(self) -> None:
        self.dismiss(None)
