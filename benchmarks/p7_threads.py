"""P7: train.threads' default (auto) against the best of 1 and 2 threads, on a quiet machine and under load.

Each run is a fresh process training recipe A (mnist-mlp, one epoch of MNIST-shaped images written as MNIST
files) through `ptviz.engine.loop.train`, so the thread choice happens as in a real run: `--threads 1`, `--threads 2`
or the default, auto (OMP_NUM_THREADS is removed from the children's environment: auto would take it).
Each process warms up with a five-step run, then times a whole one. "Loaded" means another process is
running torch matrix products on two threads all along, as another user's training job would; "quiet"
means nothing else of ours runs (on a shared machine, other users' load is there in both).

    python -m benchmarks.p7_threads child --threads 0 --mnist-root DIR      # one run, JSON out
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Result, interleaved, median

ROOT = Path(__file__).resolve().parents[1]
QUIET_TARGET, LOADED_TARGET = 1 / 1.1, 1 / 1.2  # auto's samples/s over the best fixed count's
SIDES = {"1 thread": 1, "2 threads": 2, "auto": 0}
LOAD = ("import torch\ntorch.set_num_threads(2)\na = torch.randn(512, 512)\nprint('busy', flush=True)\n"
        "while True:\n    a @ a\n")


def child(argv: list[str]) -> None:
    """Train one epoch with --threads N (0: auto) after a warm-up; print samples/s and the count used."""
    parser = argparse.ArgumentParser(prog="p7_threads child")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--mnist-root", required=True)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    from ptviz.engine.events import RunStarted
    from ptviz.engine.loop import train
    from ptviz.engine.recipes import recipe

    started: list[RunStarted] = []

    class Sink:
        def emit(self, event: Any) -> None:
            if isinstance(event, RunStarted):
                started.append(event)

    config = recipe("mnist-mlp")
    config.data.root = args.mnist_root
    config.output.runs_dir = ""
    config.train.device = args.device
    config.train.epochs = 1
    config.train.threads = args.threads
    warm = config.copy()
    warm.train.max_steps = 5
    train(warm, Sink())
    start = time.perf_counter()
    train(config, Sink())
    seconds = time.perf_counter() - start
    images = started[-1].train_size
    print(json.dumps({"samples_per_s": images / seconds, "threads": started[-1].threads,
                      "why": started[-1].threads_why}))


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("OMP_NUM_THREADS", None)
    return env


def one_run(threads: int, root: Path, device: str, runs: list[dict[str, Any]]) -> float:
    """Samples/s of one child run (its JSON is kept in `runs`)."""
    argv = [sys.executable, "-m", "benchmarks.p7_threads", "child", "--threads", str(threads), "--mnist-root",
            str(root), "--device", device]
    done = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"p7 child failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    runs.append(out)
    return out["samples_per_s"]


def measure(root: Path, repeats: int, device: str) -> tuple[dict[str, list[float]], list[dict[str, Any]]]:
    """Interleaved repeats of the three sides."""
    runs: list[dict[str, Any]] = []
    contenders = {name: (lambda n=n: one_run(n, root, device, runs)) for name, n in SIDES.items()}
    return interleaved(contenders, repeats), runs


def run(args: argparse.Namespace) -> list[Result]:
    """P7 rows: auto over the best of 1 and 2 threads, quiet and loaded."""
    import tempfile

    from benchmarks.p2_cockpit import write_mnist

    images = args.mnist_size
    device = "cpu" if args.device == "auto" else args.device
    rows = []
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as tmp:
        root = Path(tmp)
        write_mnist(root, images)
        measured = {}
        for condition in ("quiet", "loaded"):
            load = None
            if condition == "loaded":
                load = subprocess.Popen([sys.executable, "-c", LOAD], stdout=subprocess.PIPE, text=True)
                load.stdout.readline()  # it is computing
            try:
                measured[condition] = measure(root, args.repeats, device)
            finally:
                if load is not None:
                    load.kill()
                    load.wait()
    for condition, target in (("quiet", QUIET_TARGET), ("loaded", LOADED_TARGET)):
        speeds, runs = measured[condition]
        medians = {name: median(values) for name, values in speeds.items()}
        best_name = max(("1 thread", "2 threads"), key=medians.get)
        auto_counts = sorted({r["threads"] for r in runs if r["why"].startswith("auto")})
        rows.append(Result(
            case="P7", measure=f"samples/s, threads auto vs best of 1/2, {condition}: {images}×1×28×28, mnist-mlp",
            value=medians["auto"] / medians[best_name], unit="x", target=target, higher_is_better=True,
            baseline=f"{best_name} {medians[best_name]:,.0f}/s",
            ours=f"auto ({'/'.join(map(str, auto_counts))}) {medians['auto']:,.0f}/s",
            raw={"samples_per_s": speeds, "runs": runs, "load": LOAD if condition == "loaded" else None}))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2:])
