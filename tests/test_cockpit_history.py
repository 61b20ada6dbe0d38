"""The cockpit shows a long run's history reduced to chart width, then follows what the run logs next."""

from __future__ import annotations

import numpy as np

from cockpit_helpers import wait_for
from ptviz.engine.recipes import recipe
from ptviz.engine.storage.runlog import RunLog
from ptviz.tui.app import PtvizApp
from ptviz.tui.train.charts import HISTORY_BUCKETS, ChartsPane
from ptviz.tui.train.history import Series
from ptviz.tui.train.status_bar import StatusBar
from test_history import epoch_end, points

STEPS, PER_EPOCH = 50_000, 5_000


async def test_attach_to_a_long_run_loads_its_history_reduced_then_follows_it(tmp_path):
    """50,000 logged steps reach the charts as at most two points per bucket, spike included; new rows follow."""
    run = tmp_path / "run"
    run.mkdir()
    log = RunLog(run, tensorboard=False)
    for first in range(1, STEPS + 1, 1000):
        epoch = 1 + (first - 1) // PER_EPOCH
        log.emit(points(first, first + 999, epoch=epoch,
                        loss=lambda s: 9.0 if s == 31_337 else 1.0 + 1.0 / s))
        if (first + 999) % PER_EPOCH == 0:
            log.emit(epoch_end(epoch, first + 999))
    config = recipe("digits-mlp")
    config.output.runs_dir = str(tmp_path / "runs")
    app = PtvizApp(config, attach=run)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            history = app.query_one(ChartsPane).history
            status = app.query_one(StatusBar)
            await wait_for(pilot, lambda: app.runner.follower is not None, what="the history")
            loss = history.step_loss
            assert len(loss) <= 2 * HISTORY_BUCKETS and loss.x[0] == 1 and loss.x[-1] == STEPS
            assert 31_337 in loss.x and loss.y.max() == 9.0  # the spike survived the reduction
            assert list(history.train_loss.x) == list(range(1, STEPS // PER_EPOCH + 1))
            assert status.step == STEPS and status.epoch == STEPS // PER_EPOCH
            log.emit(points(STEPS + 1, STEPS + 20, epoch=11))
            await wait_for(pilot, lambda: status.step == STEPS + 20, what="rows logged after attaching")
            assert loss.x[-20:].tolist() == list(range(STEPS + 1, STEPS + 21))
    finally:
        log.close()


def test_smoothing_a_reduced_history_averages_over_steps_not_points():
    """A loaded bucket stands for its steps: a window within it gives the bucket's mean, a wider one spans buckets."""
    series = Series(smoothed=True)
    # Two buckets of 100 steps: values 0..99 (mean 49.5) and 100..199 (mean 149.5), each as its min and max.
    x = np.array([1.0, 100.0, 101.0, 200.0])
    y = np.array([0.0, 99.0, 100.0, 199.0])
    series.load(x, y, sums=np.array([2475.0, 2475.0, 7475.0, 7475.0]), counts=np.array([50.0, 50.0, 50.0, 50.0]))
    series.extend([201, 202], [300.0, 302.0])  # points logged after the history, one per step
    assert series.smoothed_at(np.array([1, 3]), 50).tolist() == [49.5, 149.5]
    assert series.smoothed_at(np.array([3]), 200).tolist() == [99.5]  # both buckets
    assert series.smoothed_at(np.array([5]), 2).tolist() == [301.0]  # the live points: the last two steps
