"""P2: samples/s of the engine with the cockpit attached against the engine headless, same configuration.

The cockpit side is the real app, PtvizApp at 160×48 under Textual's test driver: after its start-up work
(data preview, model summary) has settled, `s` is pressed and the run goes to its end on the Train tab, with
five charts, the log, the device panel and the status line updated as on a terminal. The test driver renders
every frame through the compositor; it only skips encoding the frame as escape codes for a tty. The
headless side is `engine.loop.train` with a NullSink on the main thread, as `ptviz-tui --headless` runs it.

Each run is a process of its own, as a user's would be: it warms up with a five-step run of the same kind,
then times one full run, setup included. A process that has trained on its main thread trains ~2.5× slower
on any other thread with torch's default two OpenMP threads on this 2-core machine (two OpenMP thread teams
then exist), so sharing one process would slow the cockpit for a reason no user meets.

    python -m benchmarks.p2_cockpit child cockpit digits --epochs 40     # one side, one run, JSON out
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import Result, interleaved, median

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.95


@dataclass
class Workload:
    """One row of P2: which data, for how long, and what each cockpit run drew."""

    name: str
    data: str  # digits or mnist
    epochs: int
    samples: int
    cockpit: list[dict[str, Any]] = field(default_factory=list)


# ----------------------------------------------------------------------------- one run, in a child process


def config_for(data: str, epochs: int, mnist_root: str, device: str):
    """The run both sides train: the digits or mnist recipe, no run folder (no checkpoint files)."""
    from ptviz.engine.recipes import recipe

    config = recipe("digits-mlp" if data == "digits" else "mnist-mlp")
    config.train.epochs = epochs
    if data == "mnist":
        config.data.root = mnist_root
    config.output.runs_dir = ""
    config.train.device = device
    return config


def headless(config) -> float:
    """Seconds for ptviz.engine.loop.train with a NullSink on this (the main) thread."""
    from ptviz.engine.loop import train
    from ptviz.engine.sinks import NullSink

    start = time.perf_counter()
    finished = train(config.copy(), NullSink())
    seconds = time.perf_counter() - start
    if finished.state != "finished":
        raise RuntimeError(f"headless run ended {finished.state}")
    return seconds


async def cockpit(config) -> tuple[float, dict[str, Any]]:
    """Seconds from pressing s to the end of the run in the cockpit, and what the cockpit drew meanwhile."""
    from textual.widgets import TabbedContent

    from benchmarks.cockpit_driver import SIZE, counting_frames, press, settle, wait_for_thread_event
    from ptviz.tui.app import PtvizApp
    from ptviz.tui.train.charts import ChartsPane, MetricChart
    from ptviz.tui.frame_clock import MAX_HEAVY_SECONDS

    app = PtvizApp(config.copy())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        charts = app.query_one(ChartsPane)
        replots, frame_ticks, frame_busy = charts.replots, app.frames.frames, app.frames.busy
        with counting_frames() as frames:
            start, ui_start = time.perf_counter(), time.thread_time()
            press(app, "s")
            while app.run_state == "idle":  # the key is handled on a later turn of the loop: it starts the run
                await asyncio.sleep(0.001)
            await wait_for_thread_event(app.runner.finished)
            seconds, ui_seconds = time.perf_counter() - start, time.thread_time() - ui_start
        await pilot.pause(MAX_HEAVY_SECONDS + 0.2)  # the charts' frame after the run's last events has drawn them
        drawn = {
            "state": app.run_state,
            "tab": app.query_one(TabbedContent).active,
            "charts_on_screen": sum(c.is_on_screen for c in app.query(MetricChart)),
            "chart_replots": charts.replots - replots,
            "frame_clock_frames": app.frames.frames - frame_ticks,
            "frame_clock_cpu_seconds": round(app.frames.busy - frame_busy, 3),
            "frames": frames.count,
            "ui_thread_cpu_seconds": round(ui_seconds, 3),
            "frame_seconds_at_end": round(app.frames.interval, 3),
            "step_points": len(charts.history.step_loss),
        }
    if drawn["state"] != "finished":
        raise RuntimeError(f"cockpit run ended {drawn['state']}")
    return seconds, drawn


def child(argv: list[str]) -> None:
    """Warm up, time one run of one side and print {"seconds": ..., ...} as JSON."""
    parser = argparse.ArgumentParser(prog="p2_cockpit child")
    parser.add_argument("side", choices=("headless", "cockpit"))
    parser.add_argument("data", choices=("digits", "mnist"))
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--mnist-root", default="")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    config = config_for(args.data, args.epochs, args.mnist_root, args.device)
    warm = config.copy()
    warm.train.max_steps = 5
    if args.side == "headless":
        headless(warm)  # first-call costs (imports, kernel selection) stay out of the timing
        out: dict[str, Any] = {"seconds": headless(config)}
    else:
        asyncio.run(cockpit(warm))
        seconds, drawn = asyncio.run(cockpit(config))
        out = {"seconds": seconds, **drawn}
    out["torch_threads"] = torch.get_num_threads()
    print(json.dumps(out))


# ----------------------------------------------------------------------------- the case


def write_mnist(root: Path, n_train: int) -> None:
    """MNIST-shaped images made in memory, written as the four raw MNIST files under root/MNIST/raw."""
    import torch

    from benchmarks.p1_loop import mnist_shaped

    bundle = mnist_shaped(n_train, max(10, n_train // 6))
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, split in (("train", bundle.train), ("t10k", bundle.test)):
        images = split.images.squeeze(1).numpy()
        n, h, w = images.shape
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
        labels = split.labels.to(torch.uint8).numpy()
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def workloads(args: argparse.Namespace) -> list[Workload]:
    """digits under its recipe for a few seconds of training, and the MNIST-shaped set for one epoch."""
    epochs = 5 if args.quick else 100
    n = args.mnist_size
    return [Workload(f"digits, digits-mlp, {epochs} epochs", "digits", epochs, 1438 * epochs),
            Workload(f"{n}×1×28×28 MNIST files, mnist-mlp, 1 epoch", "mnist", 1, n)]


def run_module(module: str, argv: list[str]) -> dict[str, Any]:
    """Run `python -m module child ARGV` in a fresh process with this checkout first on the path; its JSON."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", module, "child", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "Error" in line or line.startswith("missed")]
        raise RuntimeError(f"{module} {' '.join(argv)} failed: {errors[-5:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(side: str, work: Workload, args: argparse.Namespace, mnist_root: Path) -> dict[str, Any]:
    """One run of one side in a fresh process."""
    argv = [side, work.data, "--epochs", str(work.epochs), "--mnist-root", str(mnist_root), "--device", args.device]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    return run_module("benchmarks.p2_cockpit", argv)


def run(args: argparse.Namespace) -> list[Result]:
    """P2 for every workload: median samples/s with the cockpit over median samples/s headless."""
    results = []
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as tmp:
        mnist_root = Path(tmp)
        write_mnist(mnist_root, args.mnist_size)
        for work in workloads(args):

            def side(name: str, work: Workload = work) -> float:
                out = run_child(name, work, args, mnist_root)
                if name == "cockpit":
                    work.cockpit.append(out)
                return work.samples / out["seconds"]

            runs = interleaved({"headless": lambda: side("headless"), "cockpit": lambda: side("cockpit")},
                               args.repeats)
            base, ours = median(runs["headless"]), median(runs["cockpit"])
            replots = [d["chart_replots"] for d in work.cockpit]
            frames = [d["frames"] for d in work.cockpit]
            drew = f"{median(replots):.0f} chart redraws, {median(frames):.0f} frames a run"
            results.append(Result(
                case="P2", measure=f"samples/s with the cockpit: {work.name} ({drew})", value=ours / base,
                unit="x", target=TARGET, higher_is_better=True, baseline=f"{base:,.0f}/s", ours=f"{ours:,.0f}/s",
                raw={"samples_per_run": work.samples, "headless_samples_per_s": runs["headless"],
                     "cockpit_samples_per_s": runs["cockpit"], "chart_replots_per_run": replots,
                     "frames_per_run": frames, "cockpit_runs": work.cockpit},
            ))
        from benchmarks import p2_terminal

        results += p2_terminal.run(args, mnist_root)
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2:])
    else:
        raise SystemExit("run the benchmark with benchmarks/bench.py --only P2")
