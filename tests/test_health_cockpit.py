"""Pilot tests of layer health in the Model tab, the learning-rate finder's screen and the rollback key."""

from __future__ import annotations

import math

import pytest

from cockpit_helpers import settle, type_into, wait_for
from ptviz.engine.events import LayerStats, Notice, RolledBack
from ptviz.tui.app import PtvizApp
from ptviz.tui.model.heatmap import HealthHeatmap
from ptviz.tui.model.pane import ModelPane
from ptviz.tui.screens.lr_find import LrFindScreen
from ptviz.tui.screens.rollback import RollbackScreen

from test_spike_rollback import spike_config


def sample(step, ratio=1e-3, dead=0.1):
    """A LayerStats of digits-mlp's layers with every weight's update ratio `ratio`."""
    params = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias", "bn.weight")
    return LayerStats(step, params, (2.0, 0.1) * 3 + (1.0,), (10.0, 1.0) * 3 + (1.0,),
                      (10 * ratio, ratio) * 3 + (1.0,), ("relu1", "relu2"), (dead, 0.9), (0.5, 0.5), (1.0, 1.0),
                      ranks=(2, 1) * 3 + (1,))


async def test_model_tab_shows_live_columns_a_heatmap_and_the_layer_notice(digits_config):
    """Samples fill the tree's grad / log upd / dead columns (rolled up per module), and the heatmap's rows."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        pane = app.query_one(ModelPane)
        assert [c.title for c in pane.tree.columns if c.health] == []  # nothing until a run samples
        assert not app.query_one(HealthHeatmap).display
        for step in (50, 100, 150):
            app.feed.ingest(sample(step, ratio=1e-3 if step < 150 else 0.05))
        app.feed.ingest(Notice("warning", "layer fc1: update/weight ratio 5.0e-02 for 5 samples"))
        await pilot.pause()
        assert [c.title for c in pane.tree.columns if c.health] == ["grad", "log upd", "dead"]
        fc1, relu2, model = (pane.health.latest[k] for k in ("fc1", "relu2", ""))
        assert fc1.grad_norm == math.hypot(2.0, 0.1) and round(fc1.log_ratio, 6) == round(math.log10(0.05), 6)
        assert relu2.dead == 0.9 and model.dead == 0.9  # the model shows its worst activation
        assert pane.health.layers == ["fc1", "fc2", "fc3"]  # a norm's scale (one dimension) has no row
        assert pane.health.steps == [50, 100, 150]
        heatmap = app.query_one(HealthHeatmap)
        assert heatmap.display and heatmap.size.height == 4  # a title and one row per layer
        rendered = str(heatmap.render())
        assert "steps 50–150" in rendered and "fc3" in rendered
        note = str(app.query_one("#model-health-note").render())
        assert "layer fc1" in note
        app.feed.ingest(sample(100))  # a rollback's or resume's sample cuts the history back
        assert pane.health.steps == [50, 100]


async def test_a_hidden_model_tab_draws_no_health_until_shown_and_is_right_then(digits_config):
    """Samples that arrive while the Train tab shows are kept but not drawn (no tree or heatmap repaints behind
    the charts); showing the Model tab draws the newest of them."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        pane = app.query_one(ModelPane)
        heatmap = app.query_one(HealthHeatmap)
        assert not pane.is_on_screen
        for step in (50, 100, 150):
            app.feed.ingest(sample(step, ratio=1e-3 if step < 150 else 0.05))
        await pilot.pause()
        assert pane.health.steps == [50, 100, 150]  # kept
        assert pane.tree.health == {} and heatmap.history is None  # not drawn
        await pilot.press("3")
        await wait_for(pilot, lambda: heatmap.history is not None and heatmap.size.height == 4, what="health drawn")
        assert [c.title for c in pane.tree.columns if c.health] == ["grad", "log upd", "dead"]
        assert round(pane.tree.health["fc1"].log_ratio, 6) == round(math.log10(0.05), 6)  # the newest sample
        assert "steps 50–150" in str(heatmap.render())


async def test_lr_finder_sweeps_the_form_and_enter_sets_optim_lr(digits_config):
    """L on an idle cockpit sweeps a copy of the form's configuration; Enter writes the suggestion to optim.lr."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen), what="finder screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None and screen.result.done, timeout=120, what="sweep")
        suggestion = screen.result.suggestion
        assert suggestion is not None and 1e-7 < suggestion < 10
        assert "suggested learning rate" in str(screen.query_one("#lr-find-status").render())
        chart = str(screen.query_one("#lr-find-chart").render())
        assert "suggested" in chart and "1e-07" in chart  # log-x ticks in rates
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, LrFindScreen), what="screen closed")
        assert app.config.optim.lr == suggestion
        assert not app.runner.active  # nothing was started


async def test_a_spike_pauses_the_cockpit_and_r_rolls_back_with_a_lower_lr(digits_config, tmp_path):
    """The spike at step 30 pauses the run; R, then Enter with the screen's defaults (skip 1, half the lr),
    rolls back to step 24, still paused; p resumes and the run finishes."""
    config = spike_config(digits_config, tmp_path, k=30)
    app = PtvizApp(config)
    seen = []
    async with app.run_test(size=(120, 40)) as pilot:
        original = app.feed.ingest

        def ingest(event):
            seen.append(event)
            original(event)

        app.feed.ingest = ingest
        await settle(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "paused", timeout=120, what="paused by the spike")
        assert app.spike_step == 30
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, RollbackScreen), what="rollback screen")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(isinstance(e, RolledBack) for e in seen), what="rolled back")
        back = next(e for e in seen if isinstance(e, RolledBack))
        assert (back.from_step, back.to_step, back.lr, len(back.skipped)) == (30, 24, 0.025, 2)
        assert app.run_state == "paused" and app.spike_step is None
        await pilot.press("p")
        await wait_for(pilot, lambda: app.run_state == "finished", timeout=120, what="finished")


def test_heatmap_reduction_keeps_the_sample_furthest_from_the_rule_and_colours_both_ways():
    """Reduced to fewer columns, a single excursion survives; a layer that did not move is blue, not red."""
    import numpy as np

    from ptviz.tui.model.heatmap import colour, reduce

    values = np.full((2, 100), -3.0)
    values[0, 37] = -0.5  # one sample far too high
    values[1, 80] = -np.inf  # one step that moved nothing
    reduced = reduce(values, 10)
    assert reduced.shape == (2, 10) and reduced[0, 3] == -0.5 and reduced[1, 8] == -np.inf
    assert np.count_nonzero(reduced != -3.0) == 2
    assert colour(-3.0) == "#00f000" and colour(-np.inf) == "#0028ff" and colour(np.inf) == "#ff2800"


async def test_lr_finder_on_a_paused_run_sets_the_suggestion_on_that_run(digits_config):
    """L on a paused run sweeps a copy of it (the run stays at its step); Enter sets the rate on the run."""
    from ptviz.engine.events import LrChanged

    digits_config.train.epochs, digits_config.train.log_interval = 1000, 1
    digits_config.optim.lr = 1e-6  # whenever the pause lands, the weights are nearly the initial ones
    app = PtvizApp(digits_config)
    changed = []
    async with app.run_test(size=(120, 40)) as pilot:
        original = app.feed.ingest

        def ingest(event, *args, **kwargs):
            if isinstance(event, LrChanged):
                changed.append(event)
            original(event, *args, **kwargs)

        app.feed.ingest = ingest
        await settle(pilot)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state == "running", what="running")
        await pilot.press("p")
        await wait_for(pilot, lambda: app.run_state == "paused", what="paused")
        await pilot.press("L")
        await wait_for(pilot, lambda: isinstance(app.screen, LrFindScreen), what="finder screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None and screen.result.done, timeout=120, what="sweep")
        assert screen.result.suggestion is not None and app.run_state == "paused"
        await pilot.press("enter")
        await wait_for(pilot, lambda: bool(changed), what="lr changed")
        assert changed[-1].lr == pytest.approx(screen.result.suggestion)
        assert not app.lr_finder.busy
        await pilot.press("x", "x")  # stop asks first; x again confirms
        await wait_for(pilot, lambda: not app.runner.active, what="stopped")
