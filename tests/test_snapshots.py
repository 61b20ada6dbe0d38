"""Fixed-size snapshots of the cockpit, idle and after a finished run (replayed, deterministic events)."""

from __future__ import annotations

import math

import pytest

from cockpit_helpers import settle, wait_for
from ptviz.engine.events import CheckpointSaved, EpochEnded, RunFinished, RunStarted, StepMetrics
from ptviz.engine.recipes import recipe
from ptviz.tui.app import PtvizApp
from ptviz.tui.train.charts import ChartsPane
from ptviz.tui.train.device_stats import DeviceReading
from ptviz.tui.messages import EngineEvent

STEPS_PER_EPOCH, EPOCHS = 45, 4


@pytest.fixture(autouse=True)
def frozen_clock_and_device(monkeypatch):
    """Timestamps and device readings are the only moving parts; pin them."""
    reading = DeviceReading(cpu_percent=37.0, cpu_count=2, process_rss=512 * 2**20, mem_used=6 * 2**30,
                            mem_total=24 * 2**30, nvml_error="NVMLError_LibraryNotFound")
    monkeypatch.setattr("ptviz.tui.train.device_stats.DeviceSampler.read", lambda self: reading)
    monkeypatch.setattr("ptviz.tui.train.log_pane.time.strftime", lambda fmt, *a: "12:00:00")


def finished_run_events(config):
    """A plausible 4-epoch digits run, as the engine would emit it."""
    yield RunStarted(config=config.to_dict(), run_dir="runs/20261129-120000-digits-mlp", device="cpu",
                     device_name="CPU (2 threads)", params_total=167_178, params_trainable=167_178,
                     train_size=1438, val_size=0, test_size=359, steps_per_epoch=STEPS_PER_EPOCH,
                     total_steps=STEPS_PER_EPOCH * EPOCHS, epochs=EPOCHS, class_names=tuple("0123456789"),
                     input_shape=(1, 8, 8), resident=True)
    for epoch in range(1, EPOCHS + 1):
        first = (epoch - 1) * STEPS_PER_EPOCH + 1
        steps = tuple(range(first, first + STEPS_PER_EPOCH))
        losses = tuple(2.3 * math.exp(-s / 25) + 0.05 + 0.1 * math.sin(s) ** 2 for s in steps)
        yield StepMetrics(steps=steps, losses=losses, lrs=(0.05,) * len(steps), epoch=epoch,
                          epoch_step=STEPS_PER_EPOCH, samples_per_s=15000.0 + 100 * epoch, elapsed=0.1 * epoch)
        acc = 1 - 0.3 / epoch
        yield EpochEnded(epoch=epoch, step=steps[-1], train_loss=losses[-1], train_accuracy=acc,
                         test_loss=losses[-1] * 1.2, test_accuracy=acc - 0.02, val_loss=None, val_accuracy=None,
                         seconds=0.1, lr=0.05)
    yield CheckpointSaved(path="runs/20261129-120000-digits-mlp/checkpoints/last.pt", step=180, epoch=4,
                          reason="final")
    yield RunFinished(step=180, epoch=4, seconds=0.4, stopped=False, train_loss=0.07, test_loss=0.09,
                      test_accuracy=0.905, best_test_accuracy=0.905)


def make_app(tmp_path):
    config = recipe("digits-mlp")
    config.output.runs_dir = "runs"  # shown in the form, so it must not vary; nothing is started here
    return PtvizApp(config)


async def replay_finished(pilot):
    app = pilot.app
    for event in finished_run_events(app.config):
        app.post_message(EngineEvent(event))
    await pilot.pause()
    app.query_one(ChartsPane).redraw()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_idle(snap_compare, tmp_path, size):
    """The cockpit as it opens: empty charts, the log's welcome line, idle status."""
    assert snap_compare(make_app(tmp_path), terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_finished(snap_compare, tmp_path, size):
    """After a 4-epoch run: every chart drawn, epoch lines in the log, finished status."""
    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=replay_finished)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_data_tab(snap_compare, tmp_path, size):
    """The Data tab: form beside the digits samples, raw and after the pipeline."""

    async def samples_shown(pilot):
        await pilot.press("2")
        pane = pilot.app.query_one("#data-pane")
        await wait_for(pilot, lambda: pane.sample_set is not None, what="samples")
        await settle(pilot)  # the statistics and class counts arrive after the samples

    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=samples_shown)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_model_tab(snap_compare, tmp_path, size):
    """The Model tab: run form beside the layer tree of the default MLP, with its totals."""

    async def preview_built(pilot):
        await pilot.press("3")
        await wait_for(pilot, lambda: pilot.app.query_one("#model-pane").summary is not None, what="preview")
        await settle(pilot)

    assert snap_compare(make_app(tmp_path), terminal_size=size, run_before=preview_built)


def test_resnet18_expanded_at_80x24(snap_compare):
    """The fine-tuning recipe's ResNet-18 (no weights here) one level deeper: blocks, frozen backbone, trainable fc."""
    config = recipe("cifar10-resnet18")
    config.model.pretrained = False
    config.output.runs_dir = "runs"

    async def expanded(pilot):
        await pilot.press("3")
        await wait_for(pilot, lambda: pilot.app.query_one("#model-pane").summary is not None, what="preview")
        pilot.app.query_one("#model-tree").focus()
        await pilot.press(">")
        await settle(pilot)

    assert snap_compare(PtvizApp(config), terminal_size=(80, 24), run_before=expanded)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_runs_view(snap_compare, tmp_path, monkeypatch, size):
    """The Runs view: three runs differing in lr (one a fork, under its parent), two of them overlaid with a legend."""
    from runs_helpers import synthetic_run

    from ptviz.tui.runs.tab import RunsTab

    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    base = synthetic_run(runs, "20261129-120000-digits-mlp", lr=0.05, seconds=12.5)
    synthetic_run(runs, "20261129-121500-digits-mlp", lr=0.1, seconds=11.0, accuracy_gain=0.03,
                  started="2026-11-29T12:15:00+0000")
    synthetic_run(runs, "20261129-123000-digits-mlp", lr=0.01, seconds=6.0, accuracy_gain=0.05, parent=base,
                  branch_epoch=2, started="2026-11-29T12:30:00+0000")
    config = recipe("digits-mlp")
    config.output.runs_dir = "runs"

    async def two_overlaid(pilot):
        tab = pilot.app.query_one(RunsTab)
        await wait_for(pilot, lambda: len(tab.shown) == 3 and pilot.app.focused is tab.table, what="the table")
        await pilot.press("space", "down", "space")
        await wait_for(pilot, lambda: len(tab.state.runs) == 2 and all(r.curves.loss.count for r in tab.state.runs),
                       what="the curves")
        await settle(pilot)
        tab.overlay.redraw(everything=True)
        await pilot.pause()

    assert snap_compare(PtvizApp(config, tab="runs"), terminal_size=size, run_before=two_overlaid)
