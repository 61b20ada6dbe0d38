"""P2 in CPU time: the seconds of CPU the cockpit's UI takes per second of training, in a real pty.

The wall-clock ratio of P2 needs a quiet machine; this does not. The real `ptviz-tui` draws to a pty that
answers like tmux (benchmarks/pty_cockpit.py), at each size, training mnist-mlp on MNIST-shaped files with
torch's threads at 2. From just before `s` to the run's end the process's threads are read from /proc
(benchmarks/thread_clock.py): the threads alive before `s` are the UI's (Textual's event loop on the main
thread, its writer and input threads), those started since are the run's (the training thread and its OpenMP
team). Reported: UI CPU seconds per second of training (the engine's own `seconds`), the main thread's part,
the terminal writes (about one per frame) and the UI CPU per write.

With `--against REV` the same runs are made, interleaved, with the code of that git revision (extracted to a
temporary folder), so before and after are measured side by side under the same load. `--profile` writes
cProfile stats of the UI thread for the training part of each run (benchmarks/ui_profile_child.py).

    python -m benchmarks.ui_cpu --against HEAD~3 --ui-sizes 200x60 --repeats 2 --profile
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Result, median
from benchmarks.pty_cockpit import ROOT, Terminal, environment
from benchmarks.thread_clock import ThreadClock

SETTLE_SECONDS = 3.0  # after the tabs have loaded: the data preview and the model summary finish meanwhile
SAMPLE_SECONDS = 0.25  # how often the threads are read (a thread that ends keeps its last reading)
CHILD = ROOT / "benchmarks" / "ui_profile_child.py"


def source_tree(rev: str, into: Path) -> Path:
    """The code of git revision `rev` laid out as an importable `ptviz` under `into`; the folder for PYTHONPATH."""
    src = into / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "ptviz", "engine", "tui", "assets"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    path = into / "path"
    (path / "ptviz").mkdir(parents=True)
    for item in (src / "ptviz").iterdir():
        (path / "ptviz" / item.name).symlink_to(item)
    (path / "ptviz" / "engine").symlink_to(src / "engine")
    (path / "ptviz" / "tui").symlink_to(src / "tui")
    return path


def ended(runs_dir: Path) -> bool:
    """Whether the run's summary.json says it ended (read from disk: the screen is not parsed meanwhile)."""
    for path in runs_dir.glob("*/summary.json"):
        try:
            return bool(json.loads(path.read_text()).get("ended_at"))
        except (OSError, ValueError):  # being replaced right now
            return False
    return False


def one_run(code: Path, argv: list[str], size: tuple[int, int], runs_dir: Path, profile: Path | None,
            timeout: float = 1800) -> dict[str, Any]:
    """One cockpit run of the code under `code`: CPU seconds by thread group, terminal writes, engine seconds."""
    env = environment()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))
    if profile is not None:
        env["PTVIZ_BENCH_PROFILE"] = str(profile)
    with Terminal([sys.executable, str(CHILD), *argv, "--runs-dir", str(runs_dir)], size, cwd=runs_dir,
                  env=env) as term:
        term.appears(r"torch \S+ loaded in", 0, timeout=300)
        time.sleep(SETTLE_SECONDS)
        clock = ThreadClock(term.proc.pid)
        clock.start()
        start = term.mark()
        wall = time.perf_counter()
        term.type(b"s")
        if profile is not None:
            os.kill(term.proc.pid, signal.SIGUSR1)
        deadline = wall + timeout
        while not ended(runs_dir):
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the run did not end within {timeout:g} s")
            time.sleep(SAMPLE_SECONDS)
            clock.sample()
        term.appears(r"FINISHED", start, timeout=120)
        clock.sample()
        wall = time.perf_counter() - wall
        end = term.mark()
        if profile is not None:
            os.kill(term.proc.pid, signal.SIGUSR2)
            while not profile.exists():
                time.sleep(0.1)
        term.exit_seconds(b"q", timeout=120)
        writes = term.chunks[start:end]
    passes = json.loads(Path(f"{profile}.gc.json").read_text())["full_pass_seconds"] if profile else None
    (summary,) = runs_dir.glob("*/summary.json")
    seconds = json.loads(summary.read_text())["seconds"]
    cpu = clock.report()
    ui = float(cpu["threads_before_start"])
    return {"seconds": seconds, "wall_seconds": round(wall, 2), "cpu": cpu, "writes": len(writes),
            "bytes": sum(len(chunk) for _, chunk in writes),
            "ui_per_training_second": ui / seconds, "main_per_training_second": float(cpu["main_thread"]) / seconds,
            "ui_ms_per_write": 1000 * ui / max(1, len(writes)), "gc_full_pass_seconds": passes}


def top(profile: Path, count: int = 25) -> str:
    """The functions that took the most UI time, as pstats prints them."""
    out = tempfile.SpooledTemporaryFile(mode="w+")
    stats = pstats.Stats(str(profile), stream=out)  # type: ignore[arg-type]
    stats.sort_stats("tottime").print_stats(count)
    stats.sort_stats("cumulative").print_stats(count)
    out.seek(0)
    return out.read()


def measure(args: argparse.Namespace, mnist_root: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{size: {side: [run, ...]}}, the sides interleaved in each size."""
    sides = {"now": ROOT}
    with tempfile.TemporaryDirectory(prefix="ptviz-before-") as tmp:
        if args.against:
            sides = {f"before ({args.against})": source_tree(args.against, Path(tmp)), "now": ROOT}
        argv = ["--recipe", "mnist-mlp", "--root", str(mnist_root), "--no-download", "--epochs", str(args.ui_epochs),
                "--device", args.device, "--threads", str(args.ui_threads)]
        out: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for size_text in args.ui_sizes.split(","):
            size = (int(size_text.split("x")[0]), int(size_text.split("x")[1]))
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
            for r in range(args.repeats):
                for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as runs_dir:
                        prof = None
                        if args.profile:
                            prof = args.out / f"ui-{size_text}-{name.split()[0]}-{r}.prof"
                            prof.unlink(missing_ok=True)
                        run = one_run(sides[name], argv, size, Path(runs_dir), prof)
                    run["load_average"] = [round(v, 2) for v in os.getloadavg()]
                    runs[name].append(run)
                    print(f"{size_text} {name}: {run['ui_per_training_second'] * 1000:.1f} ms UI CPU per training s, "
                          f"{run['writes']} writes, {run['ui_ms_per_write']:.2f} ms/write, {run['seconds']:.1f} s, "
                          f"load {run['load_average'][0]}", file=sys.stderr, flush=True)
                    if prof is not None:
                        (prof.with_suffix(".txt")).write_text(top(prof))
            out[size_text] = runs
    return out


def rows(measured: dict[str, dict[str, list[dict[str, Any]]]], args: argparse.Namespace) -> list[Result]:
    """One row per size and side: median UI CPU ms per training second, per write, and writes."""
    results = []
    for size_text, runs in measured.items():
        for name, side in runs.items():
            per_second = median([r["ui_per_training_second"] for r in side]) * 1000
            per_write = median([r["ui_ms_per_write"] for r in side])
            main = median([r["main_per_training_second"] for r in side]) * 1000
            writes = median([r["writes"] / r["seconds"] for r in side])
            results.append(Result(
                case="P2cpu", measure=f"UI CPU ms per training s, {size_text} pty, {args.ui_threads} threads, "
                                      f"mnist-mlp {args.ui_epochs} epochs: {name}",
                value=per_second, unit="ms", target=None, higher_is_better=False,
                baseline=f"main thread {main:.1f} ms", ours=f"{writes:.1f} writes/s, {per_write:.2f} ms each",
                raw={"size": size_text, "side": name, "runs": side}))
    return results


def run(args: argparse.Namespace, mnist_root: Path) -> list[Result]:
    """The P2cpu rows (bench.py's entry)."""
    return rows(measure(args, mnist_root), args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This case's options (bench.py adds them too)."""
    parser.add_argument("--against", help="also measure this git revision's code, interleaved (before/after)")
    parser.add_argument("--ui-sizes", default="200x60,80x24", help="terminal sizes, COLSxROWS,...")
    parser.add_argument("--ui-threads", type=int, default=2, help="the run's torch threads")
    parser.add_argument("--ui-epochs", type=int, help="epochs per run (default 10, quick 2)")
    parser.add_argument("--profile", action="store_true", help="cProfile the UI thread while it trains")


def main(argv: list[str] | None = None) -> int:
    """Standalone: write the MNIST-shaped files, measure, print the rows."""
    from benchmarks.bench import table
    from benchmarks.p2_cockpit import write_mnist

    parser = argparse.ArgumentParser(prog="python -m benchmarks.ui_cpu", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mnist-size", type=int, default=30_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    args.ui_epochs = args.ui_epochs or 10
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ptviz-mnist-") as tmp:
        write_mnist(Path(tmp), args.mnist_size)
        measured = measure(args, Path(tmp))
    print(table(rows(measured, args)))
    path = args.out / f"ui-cpu-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(measured, indent=2) + "\n")
    print(f"load {os.getloadavg()}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
