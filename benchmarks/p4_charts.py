"""P4: chart redraw time and history memory for 10k, 100k and 1M steps.

The cockpit (PtvizApp at 160×48, the Train tab, five charts) gets its history through the same
`RunHistory.ingest` the engine's events reach, in batches of 100 step points with an epoch every 1,000
steps. A full redraw is all five charts replotted and repainted whole: the time is the UI thread's CPU
from `ChartsPane.redraw(everything=True)` until Textual has painted the screen (the test driver renders
the frame; it skips only encoding it for a tty). Memory is what the history's arrays hold.

The same redraw is timed with each chart renderer, side by side: the default numpy braille one and
plotext's (PTVIZ_CHARTS=plotext); the targets apply to the default.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import numpy as np

from benchmarks.common import Result
from ptviz.engine.events import EpochEnded, StepMetrics

TARGET_MS, TARGET_MB = 30.0, 50.0
SIZES = (10_000, 100_000, 1_000_000)
BATCH, STEPS_PER_EPOCH = 100, 1_000


def events(n: int, seed: int = 0):
    """The step metrics (and epoch ends) of an n-step run: a decaying, noisy loss with the odd spike."""
    rng = np.random.default_rng(seed)
    steps = np.arange(1, n + 1)
    loss = 2.3 * np.exp(-steps / (n / 4)) + 0.05 + 0.1 * rng.random(n)
    loss[rng.integers(0, n, max(1, n // 10_000))] *= 5
    for start in range(0, n, BATCH):
        chunk = slice(start, min(n, start + BATCH))
        s, values = steps[chunk].tolist(), loss[chunk].tolist()
        epoch = 1 + (s[-1] - 1) // STEPS_PER_EPOCH
        yield StepMetrics(steps=tuple(s), losses=tuple(values), lrs=(0.05,) * len(s), epoch=epoch,
                          epoch_step=s[-1] - (epoch - 1) * STEPS_PER_EPOCH, samples_per_s=15_000.0, elapsed=0.0)
        if s[-1] % STEPS_PER_EPOCH == 0:
            yield EpochEnded(epoch=epoch, step=s[-1], train_loss=values[-1], train_accuracy=0.9,
                             test_loss=values[-1] * 1.1, test_accuracy=0.88, val_loss=None, val_accuracy=None,
                             seconds=1.0, lr=0.05)


async def measure(sizes: tuple[int, ...], repeats: int) -> list[dict[str, Any]]:
    """Redraw times (ms) and history bytes for each size, in the real cockpit layout."""
    from benchmarks.cockpit_driver import SIZE, settle
    from ptviz.engine.recipes import recipe
    from ptviz.tui.app import PtvizApp
    from ptviz.tui.train import plot, plot_plotext
    from ptviz.tui.train.charts import ChartsPane, MetricChart

    config = recipe("digits-mlp")
    config.output.runs_dir = ""
    app = PtvizApp(config)
    out = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        pane = app.query_one(ChartsPane)
        loop = asyncio.get_running_loop()
        for n in sizes:
            pane.history.clear()
            for event in events(n):
                pane.history.ingest(event)
            await pilot.pause()
            full, widget, plotext_full = [], [], []
            for _ in range(repeats):
                for renderer, times in ((plot_plotext.draw, plotext_full), (plot.draw, full)):
                    pane.options.draw = renderer
                    painted = loop.create_future()
                    start = time.thread_time()
                    drawn = pane.redraw(everything=True)
                    app.call_after_refresh(lambda painted=painted: painted.set_result(time.thread_time()))
                    times.append(1000 * (await painted - start))
                    await pilot.pause()
                # The widget's own share: replot and build every row Textual will ask for.
                start = time.thread_time()
                for chart in pane.query(MetricChart):
                    chart.replot(whole=True)
                    for y in range(chart.size.height):
                        chart.render_line(y)
                widget.append(1000 * (time.thread_time() - start))
                await pilot.pause()
            out.append({"steps": n, "charts": drawn, "full_redraw_ms": full, "widget_ms": widget,
                        "plotext_full_redraw_ms": plotext_full,
                        "history_bytes": pane.history.nbytes, "points": len(pane.history.step_loss),
                        "chart_sizes": [tuple(c.size) for c in pane.query(MetricChart)]})
    return out


def run(args: argparse.Namespace) -> list[Result]:
    """P4 rows: median full-redraw time and history memory at each size; the targets apply at 1M steps."""
    repeats = 3 if args.quick else 9
    rows = []
    for m in asyncio.run(measure(SIZES, repeats)):
        n, redraw = m["steps"], statistics.median(m["full_redraw_ms"])
        with_plotext = statistics.median(m["plotext_full_redraw_ms"])
        mb = m["history_bytes"] / 1e6
        rows.append(Result(
            case="P4", measure=f"full redraw of {m['charts']} charts, {n:,} steps", value=redraw, unit="ms",
            target=TARGET_MS, higher_is_better=False, baseline=f"plotext {with_plotext:.3g} ms",
            ours=f"braille {redraw:.3g} ms (widgets {statistics.median(m['widget_ms']):.3g})", raw=m))
        rows.append(Result(case="P4", measure=f"history memory, {n:,} steps", value=mb, unit="MB",
                           target=TARGET_MB, higher_is_better=False, raw={"bytes": m["history_bytes"]}))
    return rows
