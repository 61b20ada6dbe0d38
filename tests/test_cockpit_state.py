"""The cockpit never shows a stale number or a hint that no longer applies, and names what it trains."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from cockpit_helpers import pause_runs_before_their_first_step, settle, type_into, wait_for
from ptviz.tui.app import PtvizApp
from ptviz.tui.engine_feed import FAILED_HINT
from ptviz.tui.train.log_pane import LogPane
from ptviz.tui.train.status_bar import StatusBar


def line(app) -> str:
    return str(app.query_one(StatusBar).content)


async def test_no_rate_after_a_finish_or_a_stop(digits_config):
    """samples/s is shown while training only: a finished or stopped run shows '-', not its last rate."""
    digits_config.train.epochs = 2
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 30)) as pilot:
        status = app.query_one(StatusBar)
        await pilot.press("s")
        await wait_for(pilot, lambda: status.samples_per_s > 0, what="a rate")
        await wait_for(pilot, lambda: app.run_state == "finished", what="finished")
        await pilot.pause()
        assert status.samples_per_s > 0 and " - samples/s" in line(app) and "ETA -" in line(app)
        app.config.train.epochs = 1000
        await wait_for(pilot, lambda: not app.runner.active, what="the finished run's thread to end")
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "running" and status.samples_per_s > 0, what="running")
        assert " - samples/s" not in line(app)
        await pilot.press("x", "x")
        await wait_for(pilot, lambda: app.run_state == "stopped", what="stopped")
        await pilot.pause()
        assert " - samples/s" in line(app)


async def test_start_right_after_a_finish_waits_for_the_run_to_close(digits_config, monkeypatch):
    """s pressed while a finished run's thread still writes its last files starts the next run once it has
    returned, instead of refusing with 'a run is already going'."""
    import ptviz.engine.loop as loop

    closing, real = threading.Event(), loop.train

    def train_then_close_slowly(*args, **kwargs):
        real(*args, **kwargs)
        closing.wait(60)

    monkeypatch.setattr(loop, "train", train_then_close_slowly)
    digits_config.train.epochs = 1
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 30)) as pilot:
        status = app.query_one(StatusBar)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="finished")
        await pilot.press("s")
        await pilot.pause()
        assert app.runner.active and app.run_state == "finished" and status.note == "starting…"
        assert not app._notifications  # nothing refused
        closing.set()
        await wait_for(pilot, lambda: app.run_state == "running", what="the next run")
        await wait_for(pilot, lambda: app.run_state == "finished", what="the next run's end")
        assert len([d for d in Path(digits_config.output.runs_dir).iterdir() if d.is_dir()]) == 2


async def test_a_failure_and_its_hint_go_away_once_the_configuration_changes(digits_config):
    """A run that failed says FAILED and 'fix the problem, then press s'; editing a field makes both stale
    (IDLE, no hint), and the next run that starts shows no hint either."""
    digits_config.model.name = "no_such_module_anywhere:make"
    digits_config.train.epochs = 1
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 40)) as pilot:
        status = app.query_one(StatusBar)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "failed", what="the failure")
        assert FAILED_HINT in line(app) and " FAILED " in line(app)
        await pilot.press("3")
        await type_into(pilot, "f-model-name", "mnist-mlp")
        await pilot.pause()
        assert app.run_state == "idle" and FAILED_HINT not in line(app) and status.note == ""
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="the fixed run")
        assert FAILED_HINT not in line(app) and " FINISHED " in line(app)


async def test_the_stop_line_says_which_step_the_accuracy_was_measured_at(digits_config):
    """Stopped mid-epoch 2: the test accuracy is epoch 1's, and the line says so with its step (and says
    'stopped by request' once, not 'stopped (stopped by request)')."""
    digits_config.train.epochs = 1000
    digits_config.train.log_interval = 1
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 40)) as pilot:
        status = app.query_one(StatusBar)
        await pilot.press("s")
        await wait_for(pilot, lambda: status.step > 50, what="into the 2nd epoch")  # 45 steps an epoch
        await pilot.press("x", "enter")
        await wait_for(pilot, lambda: app.run_state == "stopped", what="stopped")
        await settle(pilot)
        (stopped,) = [t for t in app.query_one(LogPane).text_lines if " stopped by request at step " in t]
        assert "stopped (stopped" not in stopped  # the reason is said once
        tested = status.step // 45  # the last epoch that ended by the stop (a stop can land on an epoch's end)
        assert f"at step {status.step:,}; test accuracy " in stopped
        assert stopped.endswith(f"at step {45 * tested:,} (end of epoch {tested}). Training time: "
                                f"{stopped.rsplit(': ', 1)[1]}")


async def test_status_and_log_name_the_recipe_and_what_it_trains(digits_config):
    """Before and during a run the line says digits-mlp (mnist-mlp on digits); the log's first line too."""
    digits_config.train.epochs = 1
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 40)) as pilot:
        assert "digits-mlp (mnist-mlp on digits)" in line(app)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="finished")
        await settle(pilot)
        log = app.query_one(LogPane).text_lines
        assert any("started digits-mlp: mnist-mlp on digits (1,438 train / 359 test)" in t for t in log)
        assert "digits-mlp (mnist-mlp on digits)" in line(app)


async def test_num_classes_0_says_it_comes_from_the_data_set(digits_config):
    """The field shows empty with '0: from the data set'; an empty field is 0, a number overrides it."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        field = app.query_one("#f-model-num-classes")
        assert field.value == "" and field.placeholder == "0: from the data set"
        await type_into(pilot, "f-model-num-classes", "12")
        assert app.config.model.num_classes == 12
        await type_into(pilot, "f-model-num-classes", "")
        assert app.config.model.num_classes == 0 and not field.has_class("-invalid")


async def test_a_preset_chosen_in_the_data_tab_fills_every_form_and_keeps_the_runs_folder(digits_config):
    """Choosing digits-mlp over an edited configuration puts the preset's values in the forms and the status
    line, says so in the log, and leaves output.runs_dir where the user put it."""
    runs_dir = digits_config.output.runs_dir
    digits_config.recipe, digits_config.optim.lr = "mnist-mlp", 0.3
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        app.query_one("#recipe").value = "digits-mlp"
        await wait_for(pilot, lambda: app.config.recipe == "digits-mlp", what="the preset loaded")
        await settle(pilot)
        assert app.config.optim.lr == 0.05 and app.config.output.runs_dir == runs_dir
        assert float(app.query_one("#f-optim-lr").value) == 0.05
        assert "digits-mlp (mnist-mlp on digits)" in line(app)
        assert any("recipe digits-mlp loaded (mnist-mlp on digits)" in t for t in app.query_one(LogPane).text_lines)


@pytest.mark.parametrize("key", ["x", "q"])
async def test_a_stop_or_quit_question_closes_when_the_run_ends_while_it_is_asked(digits_config, monkeypatch, key):
    """x (or q) while training asks first; a run that finishes while the question is open takes the question
    with it (before, 'Stop training?' stayed over a FINISHED run), and the cockpit stays open."""
    from ptviz.engine.commands import Resume
    from ptviz.tui.screens.confirm import ConfirmScreen

    pause_runs_before_their_first_step(monkeypatch)
    digits_config.train.max_steps = 20
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "paused", what="paused")
        await pilot.press(key)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
        app.runner.send(Resume())
        await wait_for(pilot, lambda: app.run_state == "finished", what="finished")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), what="the question gone")
        assert app.is_running and app.query_one(StatusBar).state == "finished"
