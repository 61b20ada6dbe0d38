"""What the charts cost the UI while a run trains: no work without new points, none on a hidden tab."""

from __future__ import annotations

from cockpit_helpers import settle, wait_for
from ptviz.engine.events import StepMetrics
from ptviz.tui.app import PtvizApp
from ptviz.tui.train.charts import ChartsPane, StepLossChart


def points(first: int, last: int) -> StepMetrics:
    """Steps first..last of epoch 1 with a falling loss."""
    steps = tuple(range(first, last + 1))
    return StepMetrics(steps=steps, losses=tuple(2.0 / s for s in steps), lrs=(0.1,) * len(steps), epoch=1,
                       epoch_step=last, samples_per_s=1000.0, elapsed=last / 100)


async def test_charts_redraw_only_for_new_points_and_a_hidden_tab_s_are_right_when_shown(digits_config):
    """On screen, a chart is replotted once for new points and not again until more arrive; behind another tab
    it does nothing while points arrive, and shows all of them as soon as its tab shows again."""
    app = PtvizApp(digits_config)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        charts, loss = app.query_one(ChartsPane), app.query_one(StepLossChart)
        app.feed.ingest(points(1, 40))
        assert charts.redraw() >= 1 and not loss.stale()
        assert charts.redraw() == 0  # nothing new: nothing replotted
        shown = loss.text()

        await pilot.press("4")
        await wait_for(pilot, lambda: not loss.is_on_screen, what="the Train tab hidden")
        replots = charts.replots
        app.feed.ingest(points(41, 400))
        for _ in range(3):
            charts.redraw()
            await pilot.pause()
        assert charts.replots == replots and loss.stale()  # no work behind the Runs tab

        await pilot.press("1")
        await wait_for(pilot, lambda: loss.is_on_screen and not loss.stale(), what="drawn when shown")
        assert loss.text() != shown and "400" in loss.text()  # its x axis reaches the newest step
