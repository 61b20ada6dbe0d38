"""P3: key-press latency while training runs in the cockpit, p50 and p95.

The cockpit trains digits (a long run, stopped after the presses) at 160×48 under Textual's test driver.
Each press of `y` (log-scale y on every chart) is handed to the app the way the terminal's input thread
hands it over, at a random moment between 50 and 250 ms after the last one, and two times are taken:
until the binding's action has run (handled) and until the screen has been repainted after it (shown:
every chart replotted on the new scale). Runs in its own process for the reason P2 gives.

    python -m benchmarks.p3_keys child --presses 40      # one measurement, JSON out
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from typing import Any

from benchmarks.common import Result
from benchmarks.p2_cockpit import config_for, run_module

TARGET_MS = 100.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(round(q)) - 1]


async def measure(config, presses: int, seed: int = 0) -> dict[str, Any]:
    """Press y `presses` times during training; the latencies in milliseconds."""
    from benchmarks.cockpit_driver import SIZE, press, settle
    from ptviz.tui.app import PtvizApp
    from ptviz.tui.train.charts import ChartsPane

    rng = random.Random(seed)
    app = PtvizApp(config.copy())
    handled: list[float] = []
    shown: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        charts = app.query_one(ChartsPane)
        await pilot.press("s")
        while len(charts.history.step_loss) < 100:  # training is under way and the charts have data
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        pressed_at = 0.0
        repainted: asyncio.Future | None = None
        original = app.action_toggle_log_y

        def timed_action() -> None:  # found by Textual on the instance when the binding fires
            original()
            handled.append(1000 * (time.perf_counter() - pressed_at))
            app.call_after_refresh(lambda: repainted.set_result(time.perf_counter()))

        app.action_toggle_log_y = timed_action
        for _ in range(presses):
            await asyncio.sleep(rng.uniform(0.05, 0.25))
            repainted = loop.create_future()
            pressed_at = time.perf_counter()
            press(app, "y")
            shown.append(1000 * (await asyncio.wait_for(repainted, 10) - pressed_at))
        steps = len(charts.history.step_loss)
        await app.runner.stop()
    return {"handled_ms": handled, "shown_ms": shown, "steps_during": steps}


def child(argv: list[str]) -> None:
    """One measurement in this process; prints the latencies as JSON."""
    parser = argparse.ArgumentParser(prog="p3_keys child")
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_for("digits", 1000, "", args.device)  # longer than the presses take
    print(json.dumps(asyncio.run(measure(config, args.presses))))


def run(args: argparse.Namespace) -> list[Result]:
    """P3 rows: p95 until the action ran and until the screen showed it, p50 beside each."""
    presses = 10 if args.quick else 40
    extra = ["--presses", str(presses), "--device", args.device]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    out = run_module("benchmarks.p3_keys", extra)
    rows = []
    for key, what in (("handled_ms", "key y to its action run"), ("shown_ms", "key y to the charts repainted")):
        values = out[key]
        p50, p95 = percentile(values, 50), percentile(values, 95)
        rows.append(Result(
            case="P3", measure=f"latency while training, {what} (p95; {len(values)} presses)", value=p95,
            unit="ms", target=TARGET_MS, higher_is_better=False, ours=f"p50 {p50:.3g} ms",
            raw={"p50_ms": p50, "p95_ms": p95, "max_ms": max(values), "latencies_ms": values,
                 "training_steps_meanwhile": out["steps_during"]},
        ))
    return rows


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2:])
    else:
        raise SystemExit("run the benchmark with benchmarks/bench.py --only P3")
