"""Starting over SSH: the first screen comes before torch, and every key typed from launch on acts as itself."""

from __future__ import annotations

import re
import sys
import time

from textual import events

from cockpit_helpers import settle, wait_for
from ptviz.tui import heavy_tabs
from ptviz.tui.app import PtvizApp
from ptviz.tui.terminal import read_answers, typed_keys
from ptviz.tui.train.log_pane import LogPane
from ptviz.tui.train.status_bar import StatusBar
from pty_terminal import PtyTerminal
from test_never_lose_work import ENV, spawned  # noqa: F401 - fixture


def test_the_terminals_answers_are_told_apart_from_keys_typed_around_them():
    """Keys typed before and while the terminal answers are kept, in order; the answers say what it draws."""
    info = read_answers("s\x1b_Gi=31;OK\x1b\\\x1b[6;20;10tp\x1b[?62;4;22c")
    assert info.answered and info.sixel and info.kitty_graphics and info.cell_pixels == (10, 20)
    assert info.typed == "sp"
    plain = read_answers("\x1b[?1;2c")  # tmux: no graphics, no cell size
    assert plain.answered and not plain.sixel and not plain.kitty_graphics and plain.cell_pixels is None
    assert not read_answers("q").answered and read_answers("q").typed == "q"  # no answer yet: all typed
    assert [k.key for k in typed_keys("s?\x1b[A")] == ["s", "question_mark", "up"]


async def test_a_key_typed_while_the_app_was_starting_acts_as_that_key(digits_config):
    """`s` typed before the app could read the terminal starts the run (it opened the help screen)."""
    digits_config.train.epochs = 1
    app = PtvizApp(digits_config, typed="s")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.run_state == "finished", what="the run started by the typed s")
        assert app.screen.__class__.__name__ != "HelpScreen"


async def test_escape_glued_to_a_key_acts_as_escape_then_the_key(digits_config):
    """tmux and SSH deliver escape and `s` in one read (Textual's alt+s): the field is left and the run starts."""
    digits_config.train.epochs = 1
    app = PtvizApp(digits_config)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        field = app.query_one("#f-data-batch-size")
        field.focus()
        await pilot.pause()
        app.post_message(events.Key("alt+s", "s"))
        await wait_for(pilot, lambda: app.run_state != "idle", what="the run started by s")
        assert not field.has_focus and field.value == "32"  # the s reached the cockpit, not the field
        await wait_for(pilot, lambda: app.run_state == "finished", what="finished")


async def test_escape_glued_to_a_tab_key_leaves_the_field_and_shows_the_tab(digits_config):
    """`escape 3` in one read (Textual's table: £, typed into the field) leaves the field for the Model tab."""
    from textual._xterm_parser import XTermParser

    app = PtvizApp(digits_config, defer_tabs=False)
    assert [(k.key) for k in XTermParser().feed("\x1b3")] == ["escape", "3"]
    assert [(k.key) for k in XTermParser().feed("\x1bf")] == ["escape", "f"]
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        field = app.query_one("#f-data-batch-size")
        field.focus()
        await pilot.pause()
        for key in XTermParser().feed("\x1b3"):
            app.post_message(key)
        await wait_for(pilot, lambda: app.query_one("TabbedContent").active == "model", what="the Model tab")
        assert field.value == "32" and not field.has_focus


async def test_stop_asks_first_and_enter_confirms_or_n_keeps_training(digits_config):
    """x while training asks; n keeps the run going, enter (like x again) stops it with a checkpoint."""
    digits_config.train.epochs = 1000
    app = PtvizApp(digits_config)
    async with app.run_test(size=(100, 30)) as pilot:
        status = app.query_one(StatusBar)
        await pilot.press("s")
        await wait_for(pilot, lambda: status.step > 3, what="steps")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="the question")
        # the command that continues it as one types it (Markdown backticks show as such in a terminal)
        assert "ptviz-tui resume RUN_DIR continues it" in app.screen.question and "`" not in app.screen.question
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "Screen", what="the question gone")
        step = status.step
        await wait_for(pilot, lambda: status.step > step, what="training on")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="the question")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.run_state == "stopped", what="stopped")


async def test_the_first_screen_shows_before_the_tabs_load_and_says_so(digits_config):
    """Deferred tabs: the Train tab draws at once, Data and Model say they are loading, then appear."""
    app = PtvizApp(digits_config, defer_tabs=True)
    async with app.run_test(size=(100, 30)) as pilot:
        loading = app.query(heavy_tabs.TabLoading)
        if loading:  # on a fast machine the worker may have finished already
            assert "Loading torch" in str(loading.first().render())
        await pilot.press("2")  # the tab shown while loading: it gets the keyboard once it is there
        await settle(pilot)
        assert not app.query(heavy_tabs.TabLoading)
        assert app.query_one("#grid").has_focus
        assert app.query_one(StatusBar).note == ""
        assert app.data_tab is not None and app.model_tab is not None



async def test_tabs_that_fail_to_import_say_why_where_they_would_be(digits_config, monkeypatch):
    """An import error in the Data and Model tabs' modules shows in their place and in the log."""
    def broken() -> tuple[float, str]:
        raise ImportError("No module named 'torchvision'")

    monkeypatch.setattr(heavy_tabs, "load", broken)
    app = PtvizApp(digits_config, defer_tabs=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: all(t.has_class("-failed") for t in app.query(heavy_tabs.TabLoading)),
                       what="both stand-ins failed")
        assert len(app.query(heavy_tabs.TabLoading)) == 2
        assert "torchvision" in str(app.query_one("#model-loading").render())
        assert any("could not load" in line and "torchvision" in line for line in app.query_one(LogPane).text_lines)
        assert app.data_tab is None and app.model_tab is None

def test_a_late_answer_and_a_key_typed_at_launch_reach_the_cockpit_as_one_s(tmp_path, spawned):  # noqa: F811
    """Over a slow link: `s` typed at once, the terminal's answer 0.4 s late. The run starts, and the answer is
    not read as keys (textual-image waited 0.1 s; its late answer typed `[ ? 6 2 ; 4 c`, `?` the help)."""
    term = PtyTerminal([sys.executable, "-m", "ptviz", "--epochs", "1000", "--runs-dir", "runs"], cwd=tmp_path,
                       env={**ENV, "TERM": "xterm-256color"}, rows=30, columns=100)
    spawned.append(term.proc)
    try:
        term.write(b"s")
        term.wait_for(re.escape(b"\x1b[c"), timeout=120)  # the cockpit asks the terminal
        time.sleep(0.4)
        term.write(b"\x1b[?62;4c")
        term.wait_for(rb"RUNNING", timeout=120)
        term.wait_for(rb"ep(och)? 1/1000", timeout=120)
        assert b"ptviz-tui keys" not in term.seen  # no help screen
        term.write(b"q")
        term.wait_for(rb"Stop and quit", timeout=60)
        term.write(b"q")
        assert term.proc.wait(timeout=120) == 0
    finally:
        term.hang_up()
