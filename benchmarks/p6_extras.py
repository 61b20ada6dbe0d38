"""P6 with extra step values: what a grad norm and two named metrics per step cost the history reader.

Two run folders written as a run writes them (RunLog.emit of StepMetrics batches of 100 steps), one with the
fixed step fields only, one that clips (grad_norm) and has two named metrics; side by side, interleaved:
- history.load() through the binary copy (steps.bin), the way attach and resume read a history;
- the same without steps.bin: steplog.scan parsing every step line of metrics.jsonl;
- tracemalloc's peak while load() runs, against the steps.bin size (memory must not grow with the run).

    python -m benchmarks.p6_extras [--steps 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

from benchmarks.common import interleaved, median
from ptviz.engine.config import TrainConfig
from ptviz.engine.events import StepMetrics
from ptviz.engine.storage import history
from ptviz.engine.storage.runlog import RunLog

BATCH = 100


def write_run(folder: Path, steps: int, extras: bool) -> Path:
    """A run folder of `steps` step rows (with a grad norm and two named metrics when `extras`)."""
    folder.mkdir(parents=True)
    train = TrainConfig()
    train.clip_norm = 1.0 if extras else 0.0
    names = ("mae", "r2") if extras else ()
    with RunLog(folder, tensorboard=False, metrics=names, train=train) as log:
        for first in range(1, steps + 1, BATCH):
            span = tuple(range(first, first + BATCH))
            log.emit(StepMetrics(
                steps=span, losses=tuple(1.0 + 1.0 / s for s in span), lrs=(0.01,) * BATCH, epoch=1 + first // 10_000,
                epoch_step=first + BATCH - 1, samples_per_s=5000.0, elapsed=first / 1000,
                grad_norms=tuple(0.5 + 1.0 / s for s in span) if extras else (),
                metrics={name: tuple(0.25 + k + 1.0 / s for s in span) for k, name in enumerate(names)}))
    return folder


def load_seconds(folder: Path) -> float:
    start = time.perf_counter()
    history.load(folder, buckets=4096)
    return time.perf_counter() - start


def peak_mb(folder: Path) -> float:
    tracemalloc.start()
    history.load(folder, buckets=4096)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as tmp:
        plain = write_run(Path(tmp) / "plain", args.steps, extras=False)
        extra = write_run(Path(tmp) / "extras", args.steps, extras=True)
        copy = interleaved({"plain": lambda: load_seconds(plain), "extras": lambda: load_seconds(extra)}, args.repeats)
        memory = {name: peak_mb(folder) for name, folder in (("plain", plain), ("extras", extra))}
        sizes = {name: (folder / "steps.bin").stat().st_size / 1e6 for name, folder in (("plain", plain),
                                                                                       ("extras", extra))}
        for folder in (plain, extra):
            (folder / "steps.bin").unlink()
        jsonl = interleaved({"plain": lambda: load_seconds(plain), "extras": lambda: load_seconds(extra)},
                            args.repeats)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.steps:,} steps; extras: grad_norm + 2 named metrics")
    for what, times in (("load() via steps.bin", copy), ("load() from metrics.jsonl", jsonl)):
        p, e = median(times["plain"]), median(times["extras"])
        print(f"{what:28s} plain {p:7.3f} s   extras {e:7.3f} s   extras/plain {e / p:5.2f}x")
    print(f"{'load() peak traced memory':28s} plain {memory['plain']:7.1f} MB  extras {memory['extras']:7.1f} MB  "
          f"(steps.bin {sizes['plain']:.0f} MB / {sizes['extras']:.0f} MB)")


if __name__ == "__main__":
    main()
