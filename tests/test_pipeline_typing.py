"""Keys typed in one burst into a pipeline transform's parameter (tmux send-keys, SSH) act in the order typed."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import Input

from cockpit_helpers import settle, wait_for
from ptviz.engine.recipes import recipe
from ptviz.engine.transform_specs import TransformSpec
from ptviz.tui.app import PtvizApp
from ptviz.tui.data.pipeline_editor import PipelineEditor

pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")


@pytest.fixture(autouse=True)
def halfcell_images(monkeypatch):
    monkeypatch.setenv("PTVIZ_IMAGES", "halfcell")


def burst(app, keys: list[tuple[str, str | None]]) -> None:
    """Post keys as the terminal driver does for one read: all queued before the app handles the first."""
    for key, character in keys:
        app.post_message(events.Key(key, character))


TYPED = [("0", "0"), ("full_stop", "."), ("2", "2"), ("5", "5")]


@pytest.mark.parametrize("before", [
    [("backspace", None)],  # the field starts selected: backspace empties it
    [("end", None), ("backspace", None), ("backspace", None), ("backspace", None)],
], ids=["backspace", "end-backspaces"])
async def test_a_burst_of_keys_in_a_transform_parameter_acts_in_the_order_typed(tmp_path, before):
    """Backspace then "0.25" in one read into RandomHorizontalFlip's p (0.5): the field and the run's settings
    hold 0.25 (the editing keys used to act after the characters: 0.2, or 0 after end and three backspaces)."""
    config = recipe("digits-mlp")
    config.output.runs_dir = str(tmp_path / "runs")
    config.data.transforms = [TransformSpec("RandomHorizontalFlip", {"p": 0.5})]
    app = PtvizApp(config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        editor = app.query_one(PipelineEditor)
        await wait_for(pilot, lambda: editor.transforms and editor.query("#params Input"), what="the editor's form")
        field = editor.query_one("#params Input", Input)
        field.focus()
        await wait_for(pilot, lambda: app.focused is field and field.selected_text == "0.5", what="the field selected")
        burst(app, before + TYPED)
        await settle(pilot)
        assert field.value == "0.25" and app.focused is field
        assert editor.transforms[0].params["p"] == 0.25 and app.config.data.transforms[0].params["p"] == 0.25


async def test_a_burst_of_keys_in_a_form_field_acts_in_the_order_typed(tmp_path):
    """End, two backspaces and "64" in one read into the Data form's batch size (32): 64."""
    config = recipe("digits-mlp")
    config.output.runs_dir = str(tmp_path / "runs")
    app = PtvizApp(config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        field = app.query_one("#f-data-batch-size", Input)
        field.focus()
        await wait_for(pilot, lambda: app.focused is field, what="the field focused")
        burst(app, [("end", None), ("backspace", None), ("backspace", None), ("6", "6"), ("4", "4")])
        await settle(pilot)
        assert field.value == "64" and app.config.data.batch_size == 64


@pytest.mark.parametrize("before", [[], [("down", None)]], ids=["enter", "down-enter"])
async def test_enter_and_a_value_typed_in_one_read_on_the_step_list_go_into_the_parameter(tmp_path, before):
    """Enter on the step list and "0.25" in one read (tmux send-keys, SSH: "\\r0.25"): the keyboard moves into the
    highlighted step's form and the value replaces its first parameter (before, the characters went to the list and
    the field kept 0.5); a cursor key typed before the enter picks the step the enter opens."""
    config = recipe("digits-mlp")
    config.output.runs_dir = str(tmp_path / "runs")
    config.data.transforms = [TransformSpec("RandomRotation", {"degrees": 10.0}),
                              TransformSpec("RandomHorizontalFlip", {"p": 0.5})]
    app = PtvizApp(config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        editor = app.query_one(PipelineEditor)
        await wait_for(pilot, lambda: editor.transforms and editor.query("#params Input"), what="the editor's form")
        editor.steps.focus()
        await wait_for(pilot, lambda: app.focused is editor.steps and editor.steps.index == 0, what="the list")
        burst(app, before + [("enter", None)] + TYPED)
        await settle(pilot)
        field = editor.query_one("#params Input", Input)
        assert app.focused is field
        step = 1 if before else 0
        name = field.name
        assert field.value == "0.25", (field.value, name)
        assert editor.transforms[step].params[name] == 0.25
        assert app.config.data.transforms[step].params[name] == 0.25
