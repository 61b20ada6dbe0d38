"""Pilot tests of the cockpit on a user's task: the Data tab's sample table, the Model tab's tree of a lazy model,
one chart per named metric, a broken task reported with the app alive, and ptviz.fit's cockpit."""

from __future__ import annotations

import io

import pytest

from cockpit_helpers import settle, wait_for
from ptviz.engine.events import RunFinished
from ptviz.tui.app import PtvizApp
from ptviz.tui.data.pane import DataPane
from ptviz.tui.data.task_view import TaskDataView
from ptviz.tui.model.pane import ModelPane
from ptviz.tui.train.charts import AccuracyChart, ChartsPane, NamedMetricChart
from ptviz.tui.train.log_pane import LogPane
from ptviz.tui.train.status_bar import StatusBar
from task_files import BROKEN, EXAMPLES, LAZY_CLASSIFIER, write_task

TWO_METRICS = """
import torch
from torch import nn
from torch.utils.data import TensorDataset
import ptviz

def loss(model, batch):
    x, y = batch
    error = model(x) - y
    return error.pow(2).mean(), {"mae": error.abs().mean(), "max_error": error.abs().max()}

def make(config=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    return ptviz.Task(model=nn.Linear(3, 1), train=TensorDataset(x, x.sum(1, keepdim=True)),
                      test=TensorDataset(x[:16], x[:16].sum(1, keepdim=True)), loss=loss, kind="regression")
"""


def rendered(renderable) -> str:
    """A Rich renderable as plain text."""
    from rich.console import Console

    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def with_task(config, spec):
    config.data.task = spec
    return config


async def test_data_tab_of_a_non_image_task_shows_a_table_of_samples(digits_config):
    """The regression example's samples are a table: index, each field with shape, dtype and values."""
    app = PtvizApp(with_task(digits_config, f"{EXAMPLES / 'regression.py'}:make"))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        view = app.query_one(TaskDataView)
        await wait_for(pilot, lambda: view.view is not None, what="task samples")
        await pilot.pause()
        table = view.query_one("#task-table")
        assert view.display and not app.query_one(DataPane).display
        assert table.display and table.row_count == 12
        assert [str(c.label) for c in table.columns.values()] == ["#", "0", "1"]
        assert str(table.get_row_at(0)[1]).startswith("(1,) float32 [")
        assert app.focused is table
        stats = rendered(view.query_one("#task-stats").content).splitlines()
        assert stats[0].split() == ["field", "shape", "dtype", "min", "max", "mean", "std"]
        assert stats[1].split()[:3] == ["0", "(1,)", "float32"] and stats[2].split()[:3] == ["1", "(1,)", "float32"]
        assert [s.name for s in view.view.stats] == ["0", "1"]
        assert -2 <= view.view.stats[0].low < view.view.stats[0].high <= 2
        assert "1,024 train, 256 test" in str(view.query_one("#task-status").render())
        await pilot.press("n")  # the next page of samples
        await wait_for(pilot, lambda: view.view.samples[0].index == 12, what="page 2")


async def test_data_tab_of_an_image_task_draws_its_images(digits_config, tmp_path):
    digits_config.data.root = str(tmp_path)
    app = PtvizApp(with_task(digits_config, f"{EXAMPLES / 'shapes.py'}:make"))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        view = app.query_one(TaskDataView)
        await wait_for(pilot, lambda: view.view is not None, what="task samples")
        await pilot.pause()
        assert view.view.is_image and not view.query_one("#task-table").display
        tiles = list(view.query("ImageTile"))
        assert len(tiles) == 12 and tiles[0].sample.image.shape == (16, 16, 3)
        assert tiles[0].sample.label in ("cross", "disc", "square")


@pytest.mark.parametrize("way", ["task", "model"])
async def test_model_tab_shows_the_tree_of_a_model_with_lazy_layers(digits_config, tmp_path, way):
    """nn.LazyLinear layers are materialised by one sample before the summary: the tree has their parameters."""
    if way == "task":
        with_task(digits_config, f"{write_task(tmp_path, 'lazy', LAZY_CLASSIFIER)}:make")
        expected = 5 * 8 + 8 + 8 * 2 + 2
    else:
        path = write_task(tmp_path, "lazymodel", """
            from torch import nn

            def make(num_classes):
                return nn.Sequential(nn.Flatten(), nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(num_classes))
            """)
        digits_config.model.name = f"{path}:make"
        expected = 64 * 16 + 16 + 16 * 10 + 10
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        pane = app.query_one(ModelPane)
        await wait_for(pilot, lambda: pane.summary is not None or pane.error, what="model preview")
        assert not pane.error, pane.error
        summary = pane.summary
        assert summary.params_total == expected and not summary.forward_error
        linear = [m for m in summary.modules if m.type == "Linear"]
        assert len(linear) == 2 and all(m.params_total > 0 for m in linear)
        tree = pane.tree
        rows = [tree.render_line(y).text for y in range(tree.last_line + 1)]
        assert tree.last_line == len(summary.modules) - 1 and sum("Linear" in row for row in rows) == 2
        assert "no shapes" not in rendered(pane.query_one("#model-totals").content)


async def test_one_chart_per_named_metric_and_no_accuracy_for_regression(digits_config, tmp_path):
    spec = f"{write_task(tmp_path, 'two', TWO_METRICS)}:make"
    with_task(digits_config, spec)
    digits_config.train.epochs = 3
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="run end")
        charts = app.query_one(ChartsPane)
        # the charts follow the run's layout at their next redraw (a timer): wait for it, not for a time
        await wait_for(pilot, lambda: len(charts.query(NamedMetricChart)) == 2, what="named charts")
        named = list(charts.query(NamedMetricChart))
        assert [c.metric for c in named] == ["mae", "max_error"]
        assert app.query_one(AccuracyChart).has_class("-absent") and all(c.display for c in named)
        assert len(charts.history.metric("mae").step) == 3 * 2 and len(charts.history.metric("mae").test) == 3
        await wait_for(pilot, lambda: "max_error" in named[1].text() and "test" in named[1].text(), what="drawn")
        assert any("test mae" in line for line in app.query_one(LogPane).text_lines)



async def test_the_status_line_and_ready_line_name_the_task_not_the_recipe(digits_config, tmp_path):
    """With --task the recipe's model and data are not used: the status line and the log name the task instead."""
    spec = f"{write_task(tmp_path, 'two', TWO_METRICS)}:make"
    digits_config.train.epochs = 1
    app = PtvizApp(with_task(digits_config, spec))
    async with app.run_test(size=(200, 48)) as pilot:
        await settle(pilot)
        status = app.query_one(StatusBar)
        assert (status.recipe, status.trains) == ("task", spec) and "mnist-mlp" not in str(status.content)
        assert any(f" ready: task {spec}." in line for line in app.query_one(LogPane).text_lines)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="run end")
        assert (status.recipe, status.trains) == ("task two", spec)
        assert " task two " in str(status.content) and "digits" not in str(status.content)

async def test_a_broken_task_fails_with_its_file_and_line_and_the_app_stays(digits_config, tmp_path):
    """A loss that returns one value per sample: the run fails before writing anything; the log names the loss's
    file and line; the cockpit keeps going and starts again once the file is fixed."""
    path = write_task(tmp_path, "non_scalar", BROKEN["non_scalar"])
    app = PtvizApp(with_task(digits_config, f"{path}:make"))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "failed", what="failure")
        log = "\n".join(app.query_one(LogPane).text_lines)
        assert "non_scalar.py, line 7) returned a loss of shape" in log and "Traceback" not in log
        assert app.is_running and not (tmp_path / "runs").exists()
        path.write_text(path.read_text().replace(".pow(2)  #", ".pow(2).mean()  #"))
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "finished", what="the fixed task's run")
        assert (tmp_path / "runs").is_dir()


async def test_fit_opens_the_cockpit_and_trains_the_task_once_the_tabs_have_looked(digits_config, tmp_path):
    """ptviz.fit's cockpit: the run starts by itself after the Data and Model previews, and its end is returned."""
    from ptviz.engine.config import TASK_FROM_FIT
    from ptviz.engine.task import load_task

    task = load_task(f"{write_task(tmp_path, 'two', TWO_METRICS)}:make", None)
    digits_config.data.task = TASK_FROM_FIT
    digits_config.train.epochs = 2
    finished: list[RunFinished] = []
    app = PtvizApp(digits_config, task=task, finished=finished)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.run_state == "finished", what="the run fit started")
        assert app.query_one(TaskDataView).view is not None and app.query_one(ModelPane).summary is not None
    assert len(finished) == 1 and finished[0].step == 4 and finished[0].test_metrics.keys() == {"mae", "max_error"}


async def test_a_run_folders_task_is_not_imported_before_a_yes(digits_config, tmp_path):
    """A cockpit on a run folder that names a task (attach, resume) shows neither its samples nor its model, and
    runs none of its code, until the user confirms; then both tabs load it."""
    from ptviz.engine import trust
    from ptviz.tui.screens.confirm import ConfirmScreen

    marker = tmp_path / "task-code-ran"
    path = write_task(tmp_path, "marked", f"open({str(marker)!r}, 'a').write('loaded\\n')\n" + TWO_METRICS)
    config = with_task(digits_config, f"{path}:make")
    app = PtvizApp(config, unconfirmed_code=trust.user_code(config))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirm screen")
        assert f"data.task = {path}:make" in app.screen.question
        view = app.query_one(TaskDataView)
        await wait_for(pilot, lambda: "whose code runs only once you confirm it" in " ".join(rendered(
            view.query_one("#task-status").content).split()), what="the Data tab to hold the task")  # it wraps
        assert "not built" in app.query_one(ModelPane).error and not marker.exists()
        await pilot.press("y")
        await wait_for(pilot, lambda: view.view is not None and app.query_one(ModelPane).summary is not None,
                       what="both previews")
    assert marker.exists()


async def test_a_task_runs_data_form_shows_only_the_fields_a_task_reads_and_says_why(digits_config):
    """A task brings its own data: the Data form keeps the task, batch sizes and workers, hides the data set,
    pipeline and normalisation with a note saying why, and shows them all again once data.task is cleared."""
    from ptviz.engine.config import TASK_DATA_FIELDS
    from ptviz.tui.config_form import ConfigForm

    app = PtvizApp(with_task(digits_config, f"{EXAMPLES / 'regression.py'}:make"))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("2")
        form = app.query_one("#data-form", ConfigForm)
        note = app.query_one("#task-fields-note")
        await wait_for(pilot, lambda: form.shown_paths() == list(TASK_DATA_FIELDS), what="the task's fields only")
        assert note.display and "brings its own data" in str(note.render())
        for path in ("data.transforms", "data.mean"):
            editor = form.editor(path)
            label = form.children[form.children.index(editor) - 1]
            assert not editor.display and not label.display, path  # the field's label goes with it
        task = form.editor("data.task")
        task.focus()
        task.value = ""
        await wait_for(pilot, lambda: form.shown_paths() == form.paths, what="every data field again")
        assert not note.display and app.config.data.task == ""
