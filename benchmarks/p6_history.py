"""P6: a long run's history: attach to a run with 1M logged steps, the memory that takes, and resuming it.

The run folder is written as a run writes it (RunLog.emit of StepMetrics batches of 100 steps; every 938
steps an epoch with its evaluation and two checkpoint rows), then the row of a real last.pt and 300 steps
past it, as if the process had been killed there. Each figure comes from a fresh process:

- attach: PtvizApp attached to the folder at 160×48 under Textual's test driver; the time from creating the
  app to the first painted frame that shows the whole history (charts replotted, the status line at the last
  step), and the process's peak RSS. Beside it: the same cockpit attached to a 10-step run, so the memory the
  history adds is the difference;
- reading the history into the charts' series, side by side: as it was read before (a dict per row, then the
  events fed to the chart history one by one) and as it is now (history.load, then RunHistory.load): time,
  and the memory the process holds afterwards over what it held before;
- headless resume: `ptviz-tui resume RUN --headless` to 5 steps past the checkpoint, whole process wall time,
  beside the same resume of a 10-step run; the log after it starts with the log cut at the checkpoint, byte
  for byte.

    python -m benchmarks.p6_history child attach RUN_DIR     # one attach, JSON out
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from benchmarks.common import Result, interleaved, median

ROOT = Path(__file__).resolve().parents[1]
ATTACH_TARGET_S, MEMORY_TARGET_MB, RESUME_TARGET_S = 2.0, 300.0, 3.0
FULL_STEPS = 1_000_000
STEPS_PER_EPOCH, BATCH, PAST_CHECKPOINT = 938, 100, 300


# ----------------------------------------------------------------------------- the run folder


def checkpoint_template(scratch: Path) -> dict[str, Any]:
    """A real digits-mlp checkpoint (three steps of training) to place at any step."""
    from ptviz.engine.loop import train
    from ptviz.engine.recipes import recipe
    from ptviz.engine.storage.checkpoint import load_checkpoint

    config = recipe("digits-mlp")
    config.output.runs_dir = str(scratch)
    config.output.tensorboard = False
    config.train.max_steps = 3
    train(config)
    (run,) = scratch.iterdir()
    return load_checkpoint(run / "checkpoints" / "last.pt")


def write_run(parent: Path, steps: int, template: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """A run folder with `steps` logged steps whose last.pt was taken PAST_CHECKPOINT steps before the end."""
    import numpy as np
    import torch

    from ptviz.engine.events import CheckpointSaved, EpochEnded, Evaluated, RunStarted, StepMetrics
    from ptviz.engine.recipes import recipe
    from ptviz.engine.storage.rundir import create_run_dir
    from ptviz.engine.storage.runlog import RunLog

    config = recipe("digits-mlp")
    config.output.runs_dir = str(parent)
    config.output.tensorboard = False
    run = create_run_dir(config)
    saved_at = max(1, steps - PAST_CHECKPOINT)
    digits_epoch = 45  # digits-mlp's steps per epoch: where the checkpoint's position must lie
    state = dict(template, step=saved_at, epoch=saved_at // digits_epoch, batch_in_epoch=saved_at % digits_epoch,
                 save_id=uuid.uuid4().hex)
    state["config"] = dict(state["config"], train=dict(state["config"]["train"], epochs=state["epoch"] + 2))
    rng = np.random.default_rng(0)
    confusion = tuple(tuple(int(v) for v in row) for row in rng.integers(0, 9, (10, 10)))
    with RunLog(run, tensorboard=False) as log:
        log.sync = lambda: None  # a run fsyncs at each checkpoint row; setting up the benchmark need not
        log.emit(RunStarted(config=config.to_dict(), run_dir=str(run), device="cpu", device_name="CPU (2 threads)",
                            params_total=167_178, params_trainable=167_178, train_size=60_000, val_size=0,
                            test_size=10_000, steps_per_epoch=STEPS_PER_EPOCH, total_steps=steps + 10_000,
                            epochs=steps // STEPS_PER_EPOCH + 10, class_names=tuple("0123456789"),
                            input_shape=(1, 28, 28), resident=True))
        # Batches of BATCH steps, cut at every epoch's end and at the checkpoint, as the loop's emits are.
        ends = sorted({*range(BATCH, steps, BATCH), *range(STEPS_PER_EPOCH, steps, STEPS_PER_EPOCH), saved_at, steps})
        first = 1
        for last in ends:
            epoch = 1 + (first - 1) // STEPS_PER_EPOCH
            n = last - first + 1
            losses = (2.3 * np.exp(-np.arange(first, last + 1) / (steps / 4)) + 0.1 * rng.random(n)).tolist()
            log.emit(StepMetrics(steps=tuple(range(first, last + 1)), losses=tuple(losses), lrs=(0.01,) * n,
                                 epoch=epoch, epoch_step=last - (epoch - 1) * STEPS_PER_EPOCH,
                                 samples_per_s=25_000.0 + (last % 977), elapsed=last / 390.0))
            if last % STEPS_PER_EPOCH == 0:
                log.emit(Evaluated("test", last, epoch, 0.3, 0.9, 10_000, confusion, ((1, 2, 3),)))
                log.emit(EpochEnded(epoch, last, 0.3, 0.91, 0.3, 0.9, None, None, 2.4, 0.01))
                save_id = uuid.uuid4().hex
                for name in (f"epoch-{epoch:04d}.pt", "last.pt"):
                    log.emit(CheckpointSaved(str(run / "checkpoints" / name), last, epoch, "epoch", save_id))
            if last == saved_at:
                log.emit(CheckpointSaved(str(run / "checkpoints" / "last.pt"), saved_at, state["epoch"], "periodic",
                                         state["save_id"]))
            first = last + 1
    torch.save(state, run / "checkpoints" / "last.pt")
    return run, state


# ----------------------------------------------------------------------------- children (one measurement each)


def peak_mb() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def rss_mb() -> float:
    """This process's resident memory now."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def attach(run_dir: Path, last_step: int) -> dict[str, Any]:
    """Seconds from creating the attached cockpit to the painted frame showing the whole history."""
    start = time.perf_counter()
    from benchmarks.cockpit_driver import SIZE
    from ptviz.engine.config import RunConfig, load_toml
    from ptviz.tui.app import PtvizApp
    from ptviz.tui.commands import config_of
    from ptviz.tui.train.charts import ChartsPane
    from ptviz.tui.train.status_bar import StatusBar

    imports = time.perf_counter() - start
    config: RunConfig = config_of(load_toml(str(run_dir / "config.toml")), "config.toml")
    before = peak_mb()
    created = time.perf_counter()
    app = PtvizApp(config, attach=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        status = app.query_one(StatusBar)
        chart = app.query_one("#chart-step-loss")
        while not (app.runner.follower is not None and status.step == last_step
                   and chart.drawn_version == chart.data_version()):
            await asyncio.sleep(0.002)
        painted = asyncio.get_running_loop().create_future()
        app.call_after_refresh(lambda: painted.set_result(time.perf_counter()))
        seconds = await painted - created
        out = {"seconds": seconds, "imports_seconds": imports, "peak_mb": peak_mb(), "rss_mb": rss_mb(),
               "peak_before_app_mb": before, "points": len(app.query_one(ChartsPane).history.step_loss),
               "last_step": last_step}
        await pilot.pause()
    return out


def read_history(run_dir: Path, how: str) -> dict[str, Any]:
    """The log read into the charts' series: "before" (a dict per row, each event ingested) or "now"."""
    from ptviz.engine.storage import history, logrows
    from ptviz.tui.train.charts import HISTORY_BUCKETS, RunHistory

    chart_history = RunHistory()
    held_before = rss_mb()
    start = time.perf_counter()
    if how == "before":
        events = logrows.events_of(logrows.read_rows(run_dir / "metrics.jsonl"))
        for event in events:
            chart_history.ingest(event)
    else:
        snapshot = history.load(run_dir, buckets=HISTORY_BUCKETS)
        chart_history.load(snapshot)
        events = snapshot.events
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "held_mb": rss_mb() - held_before, "events": len(events),
            "points": len(chart_history.step_loss)}


def child(argv: list[str]) -> None:
    """One measurement in this fresh process; prints JSON."""
    parser = argparse.ArgumentParser(prog="p6_history child")
    parser.add_argument("what", choices=("attach", "before", "now"))
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--last-step", type=int, default=0, help="attach: the step the history ends at")
    args = parser.parse_args(argv)
    out = asyncio.run(attach(args.run_dir, args.last_step)) if args.what == "attach" else read_history(
        args.run_dir, args.what)
    print(json.dumps(out))


# ----------------------------------------------------------------------------- the case


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run_child(what: str, run_dir: Path, last_step: int = 0) -> dict[str, Any]:
    """One child measurement."""
    argv = [sys.executable, "-m", "benchmarks.p6_history", "child", what, str(run_dir), "--last-step", str(last_step)]
    done = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"p6 child {what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def resume_seconds(pristine: Path, state: dict[str, Any], scratch: Path) -> float:
    """Wall seconds of `ptviz-tui resume RUN --headless` on a fresh copy of `pristine`, to 5 steps past it."""
    run = scratch / f"copy-{uuid.uuid4().hex[:8]}" / pristine.name
    shutil.copytree(pristine, run)
    jsonl = (pristine / "metrics.jsonl").read_bytes()
    cut = jsonl.index(b"\n", jsonl.rindex(state["save_id"].encode())) + 1
    argv = [sys.executable, "-m", "ptviz", "resume", str(run), "--headless", "--max-steps", str(state["step"] + 5)]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=1800)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"resume failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    with open(run / "metrics.jsonl", "rb") as fh:
        if fh.read(cut) != jsonl[:cut]:
            raise RuntimeError("the resumed log does not start with the log cut at the checkpoint")
    shutil.rmtree(run.parent)
    return seconds


def run(args: argparse.Namespace) -> list[Result]:
    """P6 rows: attach time and memory at 1M steps (with the reading of before beside it), headless resume."""
    repeats = 1 if args.quick else 3
    baseline_steps = 100_000 if args.quick else FULL_STEPS  # reading 1M rows as dicts takes about a minute
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as tmp:
        tmp_path = Path(tmp)
        template = checkpoint_template(tmp_path / "scratch")
        big, big_state = write_run(tmp_path / "big", FULL_STEPS, template)
        tiny, tiny_state = write_run(tmp_path / "tiny", 10, template)
        same = big if baseline_steps == FULL_STEPS else write_run(tmp_path / "base", baseline_steps, template)[0]
        folder_bytes = {f.name: f.stat().st_size for f in big.iterdir() if f.is_file()}
        attaches = [run_child("attach", big, FULL_STEPS) for _ in range(repeats)]
        tiny_attaches = [run_child("attach", tiny, 10) for _ in range(repeats)]
        reads = interleaved({how: (lambda how=how: run_child(how, same)) for how in ("before", "now")}, repeats)
        before, now = reads["before"], reads["now"]
        resumes = [resume_seconds(big, big_state, tmp_path) for _ in range(repeats)]
        tiny_resumes = [resume_seconds(tiny, tiny_state, tmp_path) for _ in range(repeats)]
    attach_s = median([a["seconds"] for a in attaches])
    peak = median([a["peak_mb"] for a in attaches])
    tiny_peak = median([a["peak_mb"] for a in tiny_attaches])
    old_s, new_s = median([b["seconds"] for b in before]), median([a["seconds"] for a in now])
    old_mb, new_mb = median([b["held_mb"] for b in before]), median([a["held_mb"] for a in now])
    resume_s, tiny_resume_s = median(resumes), median(tiny_resumes)
    steps = f"{FULL_STEPS:,} steps"
    return [
        Result(case="P6", measure=f"attach, {steps}: app created to history painted", value=attach_s, unit="s",
               target=ATTACH_TARGET_S, higher_is_better=False,
               baseline=f"10 steps {median([a['seconds'] for a in tiny_attaches]):.2f} s", ours=f"{attach_s:.2f} s",
               raw={"attach": attaches, "tiny_attach": tiny_attaches, "run_folder_bytes": folder_bytes}),
        Result(case="P6", measure=f"attach, {steps}: peak memory over a 10-step attach", value=peak - tiny_peak,
               unit="MB", target=MEMORY_TARGET_MB, higher_is_better=False,
               baseline=f"process peak {tiny_peak:.0f} MB", ours=f"process peak {peak:.0f} MB",
               raw={"peak_mb": [a["peak_mb"] for a in attaches], "tiny_peak_mb": [a["peak_mb"] for a in tiny_attaches],
                    "rss_mb": [a["rss_mb"] for a in attaches]}),
        Result(case="P6", measure=f"history into the charts, {baseline_steps:,} steps: before / now (time)",
               value=old_s / new_s, unit="x", target=None, higher_is_better=True,
               baseline=f"{old_s:.2f} s, holds +{old_mb:.0f} MB", ours=f"{new_s:.2f} s, holds +{new_mb:.0f} MB",
               raw={"before": before, "now": now}),
        Result(case="P6", measure=f"headless resume, {steps} (whole process)", value=resume_s, unit="s",
               target=RESUME_TARGET_S, higher_is_better=False, baseline=f"10 steps {tiny_resume_s:.2f} s",
               ours=f"{resume_s:.2f} s", raw={"seconds": resumes, "tiny_seconds": tiny_resumes}),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2:])
