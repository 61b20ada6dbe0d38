"""P13: the Runs view on 50 runs of 100,000 logged steps each: open it and overlay all of them at 160×48.

The runs are written by the engine's own run log (RunLog: metrics.jsonl, its binary copy, summary.json), as a
training run writes them, into benchmarks/results/ (made once, reused). A fresh process opens the cockpit at
160×48 (Textual's test driver), lets its start-up work settle, then: `4` shows the Runs tab (time until the
table lists every run; the cockpit reads the folder as it starts, so this is mostly the tab switch), `a` selects
all of them (time until every run's curves are read and the five overlay
charts are drawn with every run). Memory held is the process's resident size after the overlay less before
`4`; the curves' own arrays are reported beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import Result

TARGET_SECONDS, TARGET_MB = 2.0, 200.0
RUNS, STEPS, QUICK_STEPS = 50, 100_000, 20_000
STEPS_PER_EPOCH, BATCH = 10_000, 1_000
ROOT = Path(__file__).resolve().parents[1]


def make_runs(folder: Path, runs: int, steps: int) -> Path:
    """`runs` finished runs of `steps` step rows each under `folder` (reused when already there)."""
    from ptviz.engine.config import dump_toml
    from ptviz.engine.events import EpochEnded, RunFinished, RunStarted, StepMetrics
    from ptviz.engine.recipes import recipe
    from ptviz.engine.storage.runlog import RunLog

    done = folder / "complete.json"
    if done.exists() and json.loads(done.read_text()) == {"runs": runs, "steps": steps}:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(runs):
        lr = 0.01 * (1 + i % 10)
        config = recipe("digits-mlp")
        config.optim.lr = lr
        config.train.seed = i
        run = folder / f"run-{i:03d}"
        run.mkdir(exist_ok=True)
        (run / "config.toml").write_text(dump_toml(config))
        epochs = math.ceil(steps / STEPS_PER_EPOCH)
        with RunLog(run, tensorboard=False) as log:
            log.emit(RunStarted(config=config.to_dict(), run_dir=str(run), device="cpu", device_name="CPU",
                                params_total=1, params_trainable=1, train_size=320_000, val_size=0, test_size=1,
                                steps_per_epoch=STEPS_PER_EPOCH, total_steps=steps, epochs=epochs,
                                class_names=tuple("0123456789"), input_shape=(1, 8, 8), resident=True))
            for first in range(1, steps + 1, BATCH):
                s = range(first, min(steps, first + BATCH - 1) + 1)
                epoch = 1 + (s[0] - 1) // STEPS_PER_EPOCH
                losses = tuple(2.3 * math.exp(-k * lr / 1000) + 0.05 * ((k * 7919) % 13) / 13 for k in s)
                log.emit(StepMetrics(steps=tuple(s), losses=losses, lrs=(lr,) * len(s), epoch=epoch,
                                     epoch_step=s[-1] - (epoch - 1) * STEPS_PER_EPOCH, samples_per_s=15_000.0,
                                     elapsed=s[-1] / 1000))
                if s[-1] % STEPS_PER_EPOCH == 0 or s[-1] == steps:
                    log.emit(EpochEnded(epoch=epoch, step=s[-1], train_loss=losses[-1], train_accuracy=0.9,
                                        test_loss=losses[-1], test_accuracy=0.8 + 0.01 * epoch + 0.001 * i,
                                        val_loss=None, val_accuracy=None, seconds=10.0, lr=lr))
            log.emit(RunFinished(step=steps, epoch=epochs, seconds=steps / 1000, stopped=False,
                                 test_accuracy=0.9, best_test_accuracy=0.9))
    done.write_text(json.dumps({"runs": runs, "steps": steps}))
    return folder


MEASURE = r"""
import asyncio, json, resource, sys, time
from benchmarks.cockpit_driver import SIZE, press, settle
from ptviz.engine.recipes import recipe
from ptviz.tui.app import PtvizApp
from ptviz.tui.runs.tab import RunsTab

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()

async def main(folder, runs):
    config = recipe("digits-mlp")
    config.output.runs_dir = folder
    app = PtvizApp(config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        tab = app.query_one(RunsTab)
        before = rss()
        start = time.perf_counter()
        press(app, "4")  # as the terminal sends it: the pilot's press would also wait for the app to go idle
        deadline = time.monotonic() + 300
        while len([r for r in tab.shown if r.is_run]) < runs or app.focused is not tab.table:
            await pilot.pause(0.005)
            if time.monotonic() > deadline:
                raise SystemExit(f"the table listed {len(tab.shown)} of {runs} runs")
        listed = time.perf_counter() - start
        press(app, "a")
        def drawn():
            charts = tab.overlay.charts
            return (len(tab.state.runs) == runs and all(r.curves.version for r in tab.state.runs)
                    and all(c.drawn_version == c.data_version() for c in charts))
        while not drawn():
            await pilot.pause(0.005)
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(tab.state.runs)} of {runs} runs drawn")
        overlaid = time.perf_counter() - start
        after = rss()
        print(json.dumps({"listed_s": listed, "overlaid_s": overlaid, "rss_before": before, "rss_after": after,
                          "curves_bytes": sum(r.curves.nbytes for r in tab.state.runs),
                          "points": sum(r.curves.loss.count for r in tab.state.runs)}))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def measure(folder: Path, runs: int) -> dict:
    """One fresh process's figures (so imports and other cases do not count in its memory)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, str(folder), str(runs)], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"P13 measurement failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> list[Result]:
    """P13 rows: time to list and to overlay every run, and the memory it holds."""
    steps = QUICK_STEPS if args.quick else STEPS
    made = time.perf_counter()
    folder = make_runs(args.out / f"runs-{RUNS}x{steps}", RUNS, steps)
    made = time.perf_counter() - made
    repeats = 1 if args.quick else 3
    figures = [measure(folder, RUNS) for _ in range(repeats)]
    best = min(figures, key=lambda f: f["overlaid_s"])
    held = (best["rss_after"] - best["rss_before"]) / 1e6
    size = f"{RUNS} runs × {steps:,} steps"
    raw = {"repeats": figures, "folder_seconds": made}
    return [
        Result("P13", f"Runs view: {size} listed (key 4 to every row)", best["listed_s"], "s", None, False,
               ours=f"{best['listed_s']:.2f} s", raw=raw),
        Result("P13", f"Runs view: {size} overlaid at 160×48 (4, then a)", best["overlaid_s"], "s",
               TARGET_SECONDS, False, ours=f"{best['points']:,} steps read"),
        Result("P13", f"Runs view: memory held after the overlay ({size})", held, "MB", TARGET_MB, False,
               ours=f"curves {best['curves_bytes'] / 1e6:.2g} MB"),
    ]
