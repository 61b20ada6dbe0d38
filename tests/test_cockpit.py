"""Pilot tests of the cockpit driving the real engine on digits."""

from __future__ import annotations

import threading

import pytest

from cockpit_helpers import settle, type_into, wait_for
from ptviz.tui.app import PtvizApp
from ptviz.tui.train.charts import ChartsPane
from ptviz.tui.config_form import ConfigForm
from ptviz.tui.train.log_pane import LogPane
from ptviz.tui.runner import TRAINING_THREAD
from ptviz.tui.train.status_bar import StatusBar
from textual.widgets import Static
from ptviz.engine.config import RunConfig


@pytest.fixture
def long_config(digits_config):
    """The default recipe made long enough that only our keys end it."""
    digits_config.train.epochs = 1000
    digits_config.train.log_interval = 1
    return digits_config


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.is_alive() and t.name == TRAINING_THREAD]


async def test_start_pause_resume_stop(long_config):
    """Keys drive the run: charts grow, pause freezes the step across UI ticks, resume continues, stop ends."""
    app = PtvizApp(long_config)
    async with app.run_test(size=(120, 40)) as pilot:
        history = app.query_one(ChartsPane).history
        status = app.query_one(StatusBar)
        await pilot.press("s")
        await wait_for(pilot, lambda: len(history.step_loss) > 20, what="chart data")
        assert len(training_threads()) == 1
        grown_from = len(history.step_loss)
        await wait_for(pilot, lambda: len(history.step_loss) > grown_from, what="more chart data")
        await pilot.press("p")
        await wait_for(pilot, lambda: app.run_state == "paused", what="paused")
        paused_step = status.step
        assert paused_step == len(history.step_loss)  # every step up to the pause has its point
        for _ in range(5):  # several redraw ticks of the UI
            await pilot.pause(0.15)
            assert status.step == paused_step and len(history.step_loss) == paused_step
        assert status.state == "paused"
        assert " - samples/s" in str(status.content)  # no stale rate while nothing trains
        await pilot.press("p")
        await wait_for(pilot, lambda: status.step > paused_step, what="steps after resume")
        assert history.step_loss.x[paused_step] == paused_step + 1  # continues from the same step
        await pilot.press("x")  # asks first; x again confirms
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen", what="stop asked")
        assert app.runner.active
        await pilot.press("x")
        await wait_for(pilot, lambda: app.run_state == "stopped", what="stopped")
        await wait_for(pilot, lambda: not app.runner.active, what="thread end")
        await pilot.pause()
        assert str(status.content).startswith(" STOPPED ") and "stopping" not in str(status.content)
    assert training_threads() == []


async def test_learning_rate_keys_change_the_engines_lr(long_config):
    app = PtvizApp(long_config)
    async with app.run_test(size=(120, 40)) as pilot:
        status = app.query_one(StatusBar)
        await pilot.press("s")
        await wait_for(pilot, lambda: status.lr is not None, what="first metrics")
        assert status.lr == pytest.approx(0.05)
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: status.lr == pytest.approx(0.1), what="lr doubled")
        await pilot.press("left_square_bracket", "left_square_bracket")
        await wait_for(pilot, lambda: status.lr == pytest.approx(0.025), what="lr halved twice")
        await pilot.press("l")
        await pilot.pause()
        prompt = app.screen.query_one("#lr-input")
        prompt.value = ""
        await pilot.press(*"0.003", "enter")
        await wait_for(pilot, lambda: status.lr == pytest.approx(0.003), what="exact lr")
        lr_series = app.query_one(ChartsPane).history.lr
        await wait_for(pilot, lambda: lr_series.last() == pytest.approx(0.003), what="lr chart")
        await app.runner.stop()


async def test_learning_rate_keys_refuse_what_optim_lr_refuses_and_the_run_goes_on(long_config):
    """`]` at the top of optim.lr's range and `l` with 1e39 are refused with the reason; training carries on."""
    app = PtvizApp(long_config)

    async def set_lr(text):
        await pilot.press("l")
        await pilot.pause()
        app.screen.query_one("#lr-input").value = ""
        await pilot.press(*text, "enter")
        await pilot.pause()

    async with app.run_test(size=(120, 40)) as pilot:
        status = app.query_one(StatusBar)
        await pilot.press("s")
        await wait_for(pilot, lambda: status.lr is not None, what="first metrics")
        await pilot.press("p")  # held while the rate is near the top of its range, where digits would diverge
        await wait_for(pilot, lambda: app.run_state == "paused", what="paused")
        await set_lr("99")
        await wait_for(pilot, lambda: status.lr == pytest.approx(99.0), what="lr 99")
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert any("×2 would give 198, and optim.lr must be <= 100" in n.message for n in app._notifications)
        await set_lr("1e39")
        assert "must be <= 100" in str(app.screen.query_one("#lr-reason").render())
        await pilot.press("escape")  # the prompt stayed open: only a valid rate or escape closes it
        await set_lr("0.05")
        await wait_for(pilot, lambda: status.lr == pytest.approx(0.05), what="lr 0.05")
        step = status.step
        await pilot.press("p")
        await wait_for(pilot, lambda: status.step > step + 5, what="steps after resuming")
        assert status.lr == pytest.approx(0.05) and app.run_state == "running"
        await app.runner.stop()


async def test_quit_while_training_asks_then_stops_cleanly(long_config):
    app = PtvizApp(long_config)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "running" and app.query_one(StatusBar).step > 0)
        await pilot.press("q")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        await pilot.press("n")
        await pilot.pause()
        assert app.runner.active and app.is_running
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
    assert app.return_value == 0
    assert training_threads() == []
    runs = list((long_config.output.runs_dir and __import__("pathlib").Path(long_config.output.runs_dir)).iterdir())
    assert (runs[0] / "checkpoints" / "last.pt").is_file()  # stopping cleanly saved the work


async def test_quit_right_after_the_screen_says_finished_does_not_ask(digits_config):
    """q typed as FINISHED shows, while the run's thread still closes its logs, quits without asking
    'Training is running' (it asked, and the question stayed on screen)."""
    digits_config.train.epochs = 1
    app = PtvizApp(digits_config)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished" and app.runner.finished.is_set(), what="finished")
        app.runner.finished.clear()  # the moment before train() has returned on its thread
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running, what="exit")
        app.runner.finished.set()
    assert app.return_value == 0


async def test_a_cockpit_that_ends_without_quitting_stops_its_paused_run(long_config):
    """However the UI goes away (here: exit without the quit key, while paused), the run saves and its thread ends."""
    from ptviz.engine.storage import checkpoint as ckpt

    app = PtvizApp(long_config)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.query_one(StatusBar).step > 3, what="steps")
        await pilot.press("p")
        await wait_for(pilot, lambda: app.run_state == "paused", what="paused")
        paused_at = app.query_one(StatusBar).step
        app.exit()
    assert app.runner.finished.wait(30) and training_threads() == []
    (run,) = __import__("pathlib").Path(long_config.output.runs_dir).iterdir()
    state = ckpt.load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["reason"] == "stopped" and state["step"] == paused_at


async def test_bad_batch_size_is_marked_and_refuses_start(digits_config):
    digits_config.train.epochs = 2
    app = PtvizApp(digits_config)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("2")
        form = app.query_one("#data-form", ConfigForm)
        await type_into(pilot, "f-data-batch-size", "0")
        assert form.errors == {"data.batch_size": "must be >= 1"}
        assert form.editor("data.batch_size").has_class("-invalid")
        assert "must be >= 1" in str(app.query_one("#f-data-batch-size-reason").render())
        await type_into(pilot, "f-data-batch-size", "abc")
        assert "not a whole number" in form.errors["data.batch_size"]
        field = form.editor("data.batch_size")
        field.focus()  # an invalid field being typed in still shows its text: one row, no border over it
        await pilot.pause()
        assert field.has_focus and field.size.height == 1 and "abc" in field.render_line(0).text
        await pilot.press("s")
        await pilot.pause()
        assert app.run_state == "idle" and not app.runner.active
        await type_into(pilot, "f-data-batch-size", "64")
        assert form.errors == {}
        assert app.config.data.batch_size == 64
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state in ("finished", "stopped"), what="run end")
        assert app.query_one(ChartsPane).history.step_loss.x[-1] == 2 * 23  # 1438 / 64 -> 23 steps/epoch


BROKEN_MODEL = '''
import torch
from torch import nn

def factory(num_classes):
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            if self.training:
                raise ValueError("this model breaks while training")
            return self.fc(x.flatten(1))
    return Broken()
'''


async def test_a_failing_model_shows_its_traceback_then_a_good_one_trains(digits_config, tmp_path):
    path = tmp_path / "broken_model.py"
    path.write_text(BROKEN_MODEL)
    digits_config.model.name = f"{path}:factory"
    digits_config.train.epochs = 2
    app = PtvizApp(digits_config)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one(LogPane)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "failed", what="failure")
        text = "\n".join(log.text_lines)
        assert "this model breaks while training" in text and "Traceback" in text and "broken_model.py" in text
        assert app.is_running
        await pilot.press("3")
        await type_into(pilot, "f-model-name", "mnist-mlp")
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="second run")
        assert len(app.query_one(ChartsPane).history.test_acc) == 2


async def test_freeze_keys_at_idle_carry_into_the_run(digits_config):
    """The tutorial's fine-tuning in keys: freeze all, unfreeze the head; the run trains only the head."""
    digits_config.model.name = "cnn"
    digits_config.train.epochs = 1
    app = PtvizApp(digits_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        pane = app.query_one("#model-pane")
        await wait_for(pilot, lambda: pane.summary is not None, what="model preview")
        app.query_one("#model-tree").focus()
        await pilot.press("F", "end", "u")
        await pilot.pause()
        assert app.config.model.freeze == ["-", "+fc"]
        assert pane.summary.root.params_trainable == 64 * 10 + 10
        assert app.query_one("#f-model-freeze").value == "-, +fc"
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="run end")
        log = "\n".join(app.query_one(LogPane).text_lines)
        assert "(650 trainable)" in log


def test_help_screen_lists_every_cockpit_key():
    """The help screen is the keys' documentation: every binding of the app appears in it."""
    from ptviz.tui.screens.help import KEYS

    names = {"right_square_bracket": "]", "left_square_bracket": "[", "plus": "+", "minus": "-",
             "question_mark": "?", "space": "space", "equals_sign": "+"}
    documented = " / ".join(keys for _title, rows in KEYS for keys, _ in rows)
    for binding in PtvizApp.BINDINGS:
        if binding.action == "blur":
            documented_key = "escape"
            assert documented_key in documented
            continue
        for key in binding.key.split(","):
            assert names.get(key, key) in documented.replace("F1", "f1"), f"{key} ({binding.action}) not in help"


async def test_log_follows_its_newest_line_without_laying_out_the_screen(digits_config, monkeypatch):
    """A growing log scrolls to its last line and shows a scrollbar, yet asks for a layout only when that appears.

    Layouts are counted where they are asked for (a widget refreshing with layout=True), so a device reading or
    a preview landing on a loaded machine is told apart from the log's own.
    """
    from textual.widget import Widget

    app = PtvizApp(digits_config)
    async with app.run_test(size=(100, 30)) as pilot:
        log = app.query_one(LogPane)
        await settle(pilot)  # the data and model previews lay out the screen when they arrive
        asked: list[str] = []
        original = Widget.refresh

        def refresh(self, *regions, **kwargs):
            if kwargs.get("layout") and (self is log or self in log.ancestors_with_self):
                asked.append(type(self).__name__)
            return original(self, *regions, **kwargs)

        monkeypatch.setattr(Widget, "refresh", refresh)
        for i in range(60):
            log.say(f"line {i}")
            await pilot.pause()
        monkeypatch.setattr(Widget, "refresh", original)
        assert log.show_vertical_scrollbar and log.max_scroll_y > 0
        assert log.scroll_y == log.max_scroll_y
        shown = [log.render_line(y).text for y in range(log.size.height)]
        assert any("line 59" in row for row in shown)
        # The scrollbar appearing asks for one; before the log grew without a layout it asked once per line (61).
        assert len(asked) <= 2, asked


async def test_log_lines_wrap_to_the_log_width_whenever_they_were_written(digits_config):
    """A line logged while another tab shows, or before the terminal grows, is wrapped to the width it is seen at."""
    long = "checkpoint (epoch) at step 1,845: /tmp/nc/runs/20261129-080749-digits-mlp/checkpoints/last.pt"
    app = PtvizApp(digits_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log = app.query_one(LogPane)

        def rows() -> list[str]:
            return [log.render_line(y).text.rstrip() for y in range(log.size.height)]

        await pilot.press("3")  # the Model tab hides the log
        await pilot.pause()
        log.say(long)
        await pilot.pause()
        await pilot.press("1")
        await settle(pilot)
        # A line logged while the log was hidden is written at the frame clock's next frame (within a second,
        # later than settle's quiet when the last frame was costly).
        await wait_for(pilot, lambda: not log._waiting, what="the line written at the next frame")
        await settle(pilot)
        width = log.scrollable_content_region.width
        shown = [row for row in rows() if row.strip()]
        assert "".join(r.strip() for r in shown).endswith("checkpoints/last.pt")
        assert max(len(r) for r in shown) > width - 12  # filled to the log's width, not to its 20-column minimum
        path_rows = [r.strip() for r in shown[-3:] if "/" in r]
        assert len(path_rows) >= 2 and all(r.endswith(("/", ":")) for r in path_rows[:-1])  # broken after a '/'
        assert path_rows[-1].endswith("last.pt")
        before = sum(1 for r in shown if r.strip())
        await pilot.resize_terminal(200, 40)
        await settle(pilot)
        assert log.scrollable_content_region.width > width
        after = [row for row in rows() if row.strip()]
        assert sum(1 for r in after if r.strip()) < before  # the wider log holds each line in fewer rows
        assert max(len(r) for r in after) > width  # rows now use the room the old width did not have


async def test_start_is_refused_while_the_pipeline_editor_shows_an_invalid_parameter(digits_config):
    """An out-of-range transform parameter blocks start like a form field; the log and notice say which."""
    from ptviz.engine.transform_specs import TransformSpec
    from textual.widgets import Input

    from ptviz.tui.data.pane import DataPane
    from ptviz.tui.data.pipeline_editor import PipelineEditor

    digits_config.data.transforms = [TransformSpec("RandomCrop", {"size": 8, "padding": 2})]
    digits_config.train.epochs = 2
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        # The tab loads its data a moment after it opens (a debounce timer, which settle does not see), and the
        # editor shows the pipeline once the data has loaded: wait for that, then for the pane to be quiet.
        await wait_for(pilot, lambda: app.query(DataPane) and app.query_one(DataPane).sample_set is not None,
                       what="the data loaded and drawn")
        await settle(pilot)
        editor = app.query_one(PipelineEditor)
        size = next(i for i in editor.query("#params Input").results(Input) if i.name == "size")
        size.focus()
        size.value = "0"
        await pilot.pause()
        await pilot.press("escape")
        await pilot.press("s")
        await pilot.pause()
        assert app.run_state == "idle" and not app.runner.active
        log = "\n".join(app.query_one(LogPane).text_lines)
        assert "start refused: data.transforms: RandomCrop size must be >= 1" in log
        size.value = "6"
        await pilot.pause()
        await pilot.press("escape", "escape")
        app.action_start()
        await wait_for(pilot, lambda: app.run_state == "finished", what="run end")
        assert app.config.data.transforms[0].params["size"] == 6  # the fixed value is what trained


async def test_at_80x24_the_pipeline_editor_takes_the_forms_place(digits_config):
    """o on a small terminal shows the editor instead of the data form, so the preview keeps its width."""
    from ptviz.tui.data.pipeline_editor import PipelineEditor
    from ptviz.tui.data.samples import SampleGrid

    app = PtvizApp(digits_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        await settle(pilot)
        form_column = app.query_one("DataTab > .form-column")
        editor, grid = app.query_one(PipelineEditor), app.query_one(SampleGrid)
        assert form_column.display and not editor.display  # small terminal: the editor starts hidden
        grid.focus()
        await pilot.press("o")
        await settle(pilot)
        assert editor.display and app.focused is editor.steps
        assert not form_column.display and grid.size.width >= 40
        await pilot.press("o")
        await settle(pilot)
        assert form_column.display and not editor.display


async def test_escape_in_a_transforms_parameter_goes_back_to_the_step_list(digits_config):
    """enter edits a step, esc goes back to the list (as the editor's hint and the README say), so d then removes
    it; a second esc leaves the editor for the images, where the pane's keys and the cockpit's work."""
    from ptviz.engine.transform_specs import TransformSpec

    from ptviz.tui.data.pipeline_editor import PipelineEditor
    from ptviz.tui.data.samples import SampleGrid

    digits_config.data.transforms = [TransformSpec("RandomHorizontalFlip", {"p": 0.5})]
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        editor = app.query_one(PipelineEditor)
        await wait_for(pilot, lambda: len(editor.steps.children) == 2, what="the editor's steps")
        editor.steps.focus()
        await pilot.press("enter")
        await settle(pilot)
        assert getattr(app.focused, "name", None) == "p"
        await pilot.press("escape")
        await settle(pilot)
        assert app.focused is editor.steps
        await pilot.press("d")
        await settle(pilot)
        assert editor.transforms == []
        await pilot.press("escape")
        await settle(pilot)
        assert app.focused is app.query_one(SampleGrid) and not editor.has_focus_within


async def test_help_lists_every_key_beside_what_it_does_each_time_it_opens(tmp_path):
    """? opens the key table (laid out once per process), escape closes it, and a second opening shows the same."""
    from ptviz.tui.screens.help import KEYS, HelpScreen

    config = RunConfig()
    config.output.runs_dir = str(tmp_path / "runs")
    app = PtvizApp(config)
    async with app.run_test(size=(80, 24)) as pilot:
        seen = []
        for _ in range(2):
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
            seen.append(str(app.screen.query(Static)[1].content).splitlines())
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="help closed")
        assert seen[0] == seen[1]
        lines = [line.rstrip() for line in seen[0]]
        for title, rows in KEYS:
            assert title in lines
            for keys, description in rows:
                first_words = " ".join(description.split()[:2])
                assert any(line.startswith(keys) and first_words in line for line in lines), (keys, description)


@pytest.mark.parametrize("env, level", [(None, "none"), ("full", "full")])
async def test_tab_switches_draw_their_end_at_once_unless_the_user_asks_for_animations(tmp_path, monkeypatch,
                                                                                        env, level):
    """Over SSH every animation frame costs bytes and CPU: the tab underline jumps to the new tab in one frame;
    TEXTUAL_ANIMATIONS set by the user wins."""
    if env is None:
        monkeypatch.delenv("TEXTUAL_ANIMATIONS", raising=False)
    else:
        monkeypatch.setenv("TEXTUAL_ANIMATIONS", env)
    config = RunConfig()
    config.output.runs_dir = str(tmp_path / "runs")
    app = PtvizApp(config, defer_tabs=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("4")
        await pilot.pause()
        assert app.animation_level == level
        animating = app.animator.is_being_animated(app.query_one("#tabs Underline"), "highlight_end")
        if level == "none":
            assert not animating

