"""Pilot tests of the Model tab's form: a freeze edit the model cannot apply, and a frozen random backbone."""

from __future__ import annotations

from cockpit_helpers import type_into, wait_for
from ptviz.tui.app import PtvizApp
from ptviz.tui.config_form import ConfigForm
from ptviz.tui.train.log_pane import LogPane


def log_text(app) -> str:
    return "\n".join(app.query_one(LogPane).text_lines)


async def test_a_typo_in_the_freeze_field_is_marked_like_any_bad_field(digits_config):
    """One log line and the field's reason, no traceback; start is refused until the edit names a module."""
    digits_config.model.name = "cnn"
    app = PtvizApp(digits_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        pane = app.query_one("#model-pane")
        form = app.query_one("#run-form", ConfigForm)
        await wait_for(pilot, lambda: pane.summary is not None, what="model preview")
        await type_into(pilot, "f-model-freeze", "-featres")
        await wait_for(pilot, lambda: "model.freeze" in form.errors, what="the field marked")
        reason = "-featres: the model has no module named 'featres' (did you mean 'features'?)"
        assert form.errors["model.freeze"] == reason
        shown = app.query_one("#f-model-freeze-reason")  # two lines on screen, the whole reason in its tooltip
        assert str(shown.render()).startswith("↑ -featres: the model has no module") and shown.tooltip == reason
        assert f"model preview: model.freeze: {reason}" in log_text(app)
        assert "Traceback" not in log_text(app)
        await pilot.press("s")
        await pilot.pause()
        assert app.run_state != "running" and f"start refused: model.freeze: {reason}" in log_text(app)
        await type_into(pilot, "f-model-freeze", "-features")
        await wait_for(pilot, lambda: "model.freeze" not in form.errors, what="the mark cleared")
        await wait_for(pilot, lambda: pane.summary is not None and pane.summary.root.params_trainable == 650,
                       what="preview with the backbone frozen")
        assert "Traceback" not in log_text(app)


async def test_ticking_freeze_backbone_on_a_random_model_warns_once_in_the_log(digits_config):
    """The Model tab says what the run would do: only the head learns; the advice names the flag that fixes it."""
    digits_config.model.name = "cnn"
    app = PtvizApp(digits_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        pane = app.query_one("#model-pane")
        await wait_for(pilot, lambda: pane.summary is not None, what="model preview")
        assert "freeze_backbone" not in log_text(app)
        app.set_focus(app.query_one("#f-model-freeze-backbone"))
        await pilot.press("space")
        await wait_for(pilot, lambda: pane.summary.root.params_trainable == 650, what="frozen preview")
        await wait_for(pilot, lambda: "--no-freeze-backbone" in log_text(app), what="the warning")
        warnings = [line for line in app.query_one(LogPane).text_lines if "model.freeze_backbone" in line]
        assert len(warnings) == 1 and "only the head learns" in warnings[0]
        # Frozen modules show the mode a training step will run them in.
        assert pane.summary.module("features").training is False and pane.summary.module("fc").training is True
        app.query_one("#model-tree").focus()
        await pilot.press("F")
        await pilot.pause()
        assert not any(m.training for m in pane.summary.modules)  # all frozen: all in eval mode
        await pilot.press("end", "u")  # the same state reached by keys: no second warning
        await pilot.pause()
        modes = {m.name: m.training for m in pane.summary.modules}
        assert modes[""] and modes["fc"] and not modes["features"] and not modes["features.2"]  # ReLU in a frozen block
        assert len([line for line in app.query_one(LogPane).text_lines if "model.freeze_backbone" in line]) == 1
