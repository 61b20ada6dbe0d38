"""P10: samples/s of mnist-mlp with layer health at its default interval against health off, same data, same run.

Both sides are the real headless loop (`build()` then `Trainer.run()` with a NullSink) on the MNIST-shaped
set of P1, one epoch each, interleaved so machine load hits both alike. Only train.health_interval differs:
its default (a sample every 50 optimizer steps: gradient, weight and update norms, activation hooks on that
step's forward pass) against 0 (off, no hook ever registered).
"""

from __future__ import annotations

import argparse

from benchmarks.common import Result, interleaved, median, timed
from benchmarks.p1_loop import mnist_shaped
from ptviz.engine.commands import Control
from ptviz.engine.config import TrainConfig
from ptviz.engine.loop import Trainer
from ptviz.engine.recipes import recipe
from ptviz.engine.setup import build
from ptviz.engine.sinks import NullSink

TARGET = 0.97
DEFAULT_INTERVAL = TrainConfig().health_interval


def _loop(data, interval: int, device: str, max_steps: int = 0) -> int:
    """One headless epoch of mnist-mlp with train.health_interval = `interval`; returns the steps trained."""
    config = recipe("mnist-mlp")
    config.train.epochs, config.train.device, config.output.runs_dir = 1, device, ""
    config.train.health_interval, config.train.max_steps = interval, max_steps
    finished = Trainer(build(config, data=data), NullSink(), Control()).run()
    return finished.step


def run(args: argparse.Namespace) -> list[Result]:
    """Median samples/s with health on (default interval) and off, and their ratio."""
    n = args.mnist_size
    data = mnist_shaped(n, max(1, n // 6))
    for interval in (DEFAULT_INTERVAL, 0):  # first-call costs (kernels, hooks) are not timed
        _loop(data, interval, args.device, max_steps=60)

    def side(interval: int) -> float:
        seconds, _ = timed(lambda: _loop(data, interval, args.device))
        return n / seconds

    runs = interleaved({"off": lambda: side(0), "on": lambda: side(DEFAULT_INTERVAL)}, args.repeats)
    off, on = median(runs["off"]), median(runs["on"])
    return [Result(
        case="P10", measure=f"samples/s, health every {DEFAULT_INTERVAL} steps vs off: {n}×1×28×28 mnist-mlp",
        value=on / off, unit="x", target=TARGET, higher_is_better=True, baseline=f"{off:,.0f}/s", ours=f"{on:,.0f}/s",
        raw={"samples_per_run": n, "interval": DEFAULT_INTERVAL, "off_samples_per_s": runs["off"],
             "on_samples_per_s": runs["on"]},
    )]
