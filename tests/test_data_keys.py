"""The Data pane's keys keep working in the cockpit: after escape leaves the pipeline editor, and when a key that
moves the keyboard is typed with the next key in one read (tmux, SSH)."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import TabbedContent

from cockpit_helpers import settle
from ptviz.tui.app import PtvizApp
from ptviz.tui.data.pane import DataPane
from ptviz.tui.data.pipeline_editor import AddTransformScreen, PipelineEditor
from ptviz.tui.data.samples import SampleGrid

pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


@pytest.fixture(autouse=True)
def halfcell_images(monkeypatch):
    monkeypatch.setenv("PTVIZ_IMAGES", "halfcell")


async def test_escape_twice_in_the_pipeline_editor_leaves_the_keyboard_where_the_panes_keys_work(digits_config):
    """o, enter (a step's form), escape (its list), escape: the keyboard is on the images, so > shows the next
    view and o the editor again (before, nothing was focused and both did nothing until 2 was pressed again)."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        pane = app.query_one(DataPane)
        editor = app.query_one(PipelineEditor)
        if pane.editor_shown:
            await pilot.press("o")
        await pilot.press("o", "enter", "escape")
        await settle(pilot)
        assert app.focused is editor.steps
        await pilot.press("escape")
        await settle(pilot)
        assert app.focused is app.query_one(SampleGrid)
        await pilot.press("o")
        await settle(pilot)
        assert not pane.editor_shown
        await pilot.press("greater_than_sign")
        await settle(pilot)
        assert pane.query_one(TabbedContent).active == "stats-tab"


def burst(app, keys: list[tuple[str, str | None]]) -> None:
    """Post keys as the terminal driver does for one read: all queued before the app handles the first."""
    for key, character in keys:
        app.post_message(events.Key(key, character))


async def test_o_and_the_editors_key_typed_in_one_read_both_act(digits_config):
    """"oa" in one read opens the editor and its catalogue; "o>" hides it and shows the next view (before, the
    second key was checked against the widget that had the keyboard before o and lost)."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        pane = app.query_one(DataPane)
        if pane.editor_shown:
            await pilot.press("o")
            await settle(pilot)
        burst(app, [("o", "o"), ("a", "a")])
        await settle(pilot)
        assert isinstance(app.screen, AddTransformScreen) and pane.editor_shown
        await pilot.press("escape")
        await settle(pilot)
        assert app.focused is app.query_one(PipelineEditor).steps
        burst(app, [("o", "o"), ("greater_than_sign", ">")])
        await settle(pilot)
        assert not pane.editor_shown and pane.query_one(TabbedContent).active == "stats-tab"
