"""P9: training across processes with torchrun (gloo on the CPU, NCCL on GPUs), side by side.

Rows: samples/s of ptviz at 1 and at 2 processes (the second over the first is the scaling; on a 2-core
machine two processes share the cores the one had, so expect little), and the time per step of ptviz's
distributed path at 2 processes against PyTorch's DDP tutorial loop written by hand, under the same torchrun,
on the same in-memory data (benchmarks/p9_worker.py), repeats interleaved. Target: the hand loop's
seconds per step over ptviz's ≥ 0.95.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import Result, interleaved, median

TARGET = 0.95
WORKER = Path(__file__).resolve().with_name("p9_worker.py")


def write_mnist(root: Path, train: int, test: int) -> None:
    """MNIST-shaped random images in torchvision's raw IDX layout (the data set cannot be downloaded here)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", train), ("t10k", test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            np.array([2051, n, 28, 28], dtype=">i4").tobytes() + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([2049, n], dtype=">i4").tobytes() + labels.tobytes())


def one(side: str, nproc: int, root: Path, batch: int) -> dict:
    """One launch of the worker: under torchrun for several processes, a plain process for one."""
    out = Path(tempfile.mktemp(suffix=".json"))
    worker = [str(WORKER), "--side", side, "--root", str(root), "--batch", str(batch), "--out", str(out)]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
                if nproc > 1 else [sys.executable])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*launcher, *worker], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise RuntimeError(f"P9 {side} at {nproc} processes failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    result = json.loads(out.read_text())
    out.unlink()
    return result


def run(args: argparse.Namespace) -> list[Result]:
    batch = 64
    size = 8_000 if args.quick else 40_000
    with tempfile.TemporaryDirectory(prefix="ptviz-p9-") as folder:
        root = Path(folder)
        write_mnist(root, size, 1_000)
        per_step: dict[str, list[float]] = {}  # seconds per step, each launch

        def step_seconds(side: str, nproc: int):
            def measure() -> float:
                r = one(side, nproc, root, batch)
                per_step.setdefault(f"{side}{nproc}", []).append(r["seconds"] / r["steps"])
                return r["seconds"] / r["steps"]
            return measure

        times = interleaved({"ptviz1": step_seconds("ptviz", 1), "ptviz2": step_seconds("ptviz", 2),
                             "hand2": step_seconds("hand", 2)}, args.repeats)
    one_rate = batch / median(times["ptviz1"])
    two_rate = 2 * batch / median(times["ptviz2"])
    ratio = median(times["hand2"]) / median(times["ptviz2"])
    return [
        Result("P9", "samples/s, 1 process (ptviz)", one_rate, "samples/s", None, True, ours=f"{one_rate:,.0f}/s",
               raw=times),
        Result("P9", "samples/s, 2 processes over 1 (ptviz, torchrun)", two_rate / one_rate, "x", None, True,
               baseline=f"{one_rate:,.0f}/s", ours=f"{two_rate:,.0f}/s", raw=times),
        Result("P9", "step time, DDP tutorial loop / ptviz, 2 processes", ratio, "x", TARGET, True,
               baseline=f"{median(times['hand2']) * 1000:.2f} ms", ours=f"{median(times['ptviz2']) * 1000:.2f} ms",
               raw=times),
    ]
