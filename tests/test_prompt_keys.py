"""A key that opens a prompt and the value typed after it in one read (tmux, SSH) reach the prompt in order."""

from __future__ import annotations

from textual import events

from cockpit_helpers import pause_runs_before_their_first_step, wait_for
from ptviz.tui.app import PtvizApp
from ptviz.tui.train.status_bar import StatusBar


def burst(app, keys: list[tuple[str, str | None]]) -> None:
    """Post keys as the terminal driver does for one read: all queued before the app handles the first."""
    for key, character in keys:
        app.post_message(events.Key(key, character))


async def test_l_and_a_learning_rate_typed_in_one_read_set_that_rate(digits_config, monkeypatch):
    """"l0.02\\r" in one read on a paused run sets the rate to 0.02 and closes the prompt (before, 0.02 went to the
    cockpit before the prompt was there, and enter applied the prompt's starting value, 0.05)."""
    from textual.widgets import TabbedContent

    from ptviz.engine.commands import Resume
    from ptviz.tui.screens.lr_prompt import LrPrompt

    pause_runs_before_their_first_step(monkeypatch)
    digits_config.train.max_steps = 20
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "paused", what="paused")
        status = app.query_one(StatusBar)
        burst(app, [("l", "l"), ("0", "0"), ("full_stop", "."), ("0", "0"), ("2", "2"), ("enter", "\r")])
        await wait_for(pilot, lambda: status.lr == 0.02, what=f"lr 0.02 (now {status.lr})")
        await wait_for(pilot, lambda: not isinstance(app.screen, LrPrompt), what="the prompt closed")
        assert app.query_one(TabbedContent).active == "train"  # no 2: Data
        app.runner.send(Resume())
        await wait_for(pilot, lambda: app.run_state == "finished", what="the run's end")


async def test_a_tab_key_and_the_tabs_own_key_typed_in_one_read_both_act(digits_config):
    """"2>" in one read: the Data tab opens with the keyboard in its pane and > shows the next view, Statistics
    (before, > reached the cockpit before the pane had the keyboard and was lost)."""
    from textual.widgets import TabbedContent

    from ptviz.tui.data.pane import DataPane

    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: app.query(DataPane) and app.query("#grid"), what="the Data tab loaded")
        burst(app, [("2", "2"), ("greater_than_sign", ">")])
        pane = app.query_one(DataPane)
        await wait_for(pilot, lambda: app.query_one(TabbedContent).active == "data", what="the Data tab")
        await wait_for(pilot, lambda: pane.query_one(TabbedContent).active == "stats-tab",
                       what=f"Statistics (now {pane.query_one(TabbedContent).active})", timeout=10)


async def test_the_last_of_two_tab_keys_typed_in_one_read_wins_and_has_the_keyboard(digits_config):
    """"41", "34", "43" in one read: the second tab is shown with the keyboard on what it shows (before, the first
    tab's focus message, handled after the second key, showed the first tab again with nothing focused)."""
    from textual.widgets import TabbedContent

    from cockpit_helpers import settle

    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        tabs = app.query_one(TabbedContent)
        for keys, tab, focused in (("41", "train", None), ("34", "runs", "runs-table"), ("43", "model", "model-tree"),
                                   ("14", "runs", "runs-table")):
            burst(app, [(key, key) for key in keys])
            await settle(pilot)
            assert (tabs.active, app.focused and app.focused.id) == (tab, focused), keys
