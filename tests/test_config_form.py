"""The configuration form on its own: one grid of labels and editors, a reason under a field only while it is wrong."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Input, Label

from ptviz.engine.recipes import recipe
from ptviz.tui.config_form import ConfigForm
from ptviz.tui.field_reason import FieldReason

PATHS = ["data.batch_size", "data.download", "optim.lr", "optim.scheduler", "train.epochs"]


class FormApp(App):
    def compose(self) -> ComposeResult:
        yield ConfigForm(recipe("digits-mlp"), PATHS, id="form")


async def test_each_label_sits_beside_its_editor_and_tab_goes_field_by_field():
    """Rows read label, editor; a section header takes a row of its own; Tab visits the editors in order."""
    app = FormApp()
    async with app.run_test(size=(80, 20)) as pilot:
        form = app.query_one(ConfigForm)
        labels = list(form.query_children(Label))
        assert [str(label.render()) for label in labels] == ["batch size", "download", "lr", "scheduler", "epochs"]
        for label, path in zip(labels, PATHS):
            editor = form.editor(path)
            assert editor.region.y == label.region.y and editor.region.x == label.region.right
        assert [form.editor(p).region.y for p in PATHS] == [1, 2, 5, 6, 9]  # later headers: a blank row above
        form.editor(PATHS[0]).focus()
        await pilot.pause()
        visited = []
        for _ in PATHS:
            visited.append(form.path_of(app.focused.id))
            await pilot.press("tab")
        assert visited == PATHS


async def test_a_reason_exists_only_once_its_field_is_wrong_and_goes_when_it_is_fixed():
    """No reason widget for a valid field; typing a bad value shows it under the field, a good one hides it."""
    app = FormApp()
    async with app.run_test(size=(80, 20)) as pilot:
        form = app.query_one(ConfigForm)
        assert not form.query(FieldReason)
        field = form.editor("data.batch_size")
        field.focus()
        field.value = ""
        await pilot.press("0")
        await pilot.pause()
        (reason,) = form.query(FieldReason)
        assert form.errors == {"data.batch_size": "must be >= 1"} and field.has_class("-invalid")
        assert reason.id == "f-data-batch-size-reason" and str(reason.render()) == "↑ must be >= 1"
        assert reason.region.y == field.region.y + 1 and reason.content_region.x == field.region.x
        assert form.editor("data.download").region.y == field.region.y + 2  # the next field moved down a row
        await pilot.press("backspace", "6", "4")
        await pilot.pause()
        assert form.errors == {} and not reason.display
        assert form.editor("data.download").region.y == field.region.y + 1
        await pilot.press("backspace", "backspace", "x")  # wrong again: the same widget, another reason
        await pilot.pause()
        assert list(form.query(FieldReason)) == [reason] and reason.display
        assert "not a whole number" in str(reason.render())


async def test_a_long_reason_is_cut_to_two_lines_and_told_whole_in_its_tooltip():
    """A reason found beyond the field's own rule (e.g. by building the model) fits two lines of the form."""
    app = FormApp()
    async with app.run_test(size=(60, 20)) as pilot:
        form = app.query_one(ConfigForm)
        why = "the model has no module named 'featres' (did you mean 'features'?) " * 3
        form.mark("optim.lr", why)
        await pilot.pause()
        reason = app.query_one("#f-optim-lr-reason", FieldReason)
        lines = str(reason.render()).split("\n")
        assert reason.size.height == 2 and len(lines) == 2 and lines[1].endswith("…")
        assert all(len(line) <= reason.content_region.width for line in lines) and reason.tooltip == why
        form.mark("optim.lr", None)
        await pilot.pause()
        assert not reason.display and "optim.lr" not in form.errors


def test_every_label_fits_its_column():
    """A grid row is one line: a label longer than the column would be cut, so every field's label fits it."""
    from ptviz.engine import config as cfgmod
    from ptviz.tui.config_form import LABEL_WIDTH, _label

    assert [p for p in cfgmod.field_paths() if len(_label(p)) > LABEL_WIDTH - 1] == []
