"""P2 in a real terminal: the cockpit drawing to a pseudo-terminal against `--headless`, same run, same size.

Both sides are the real `ptviz-tui` on a pty that answers like tmux (benchmarks/pty_cockpit.py), at 80×24
and 200×60, with the run's torch threads set to 1 and to 2 (`--threads`, applied by the engine to the
training thread). The cockpit starts, loads its tabs, is left a few seconds to finish its start-up work (the
data preview, the model summary), then `s` starts the run on the Train tab and the run goes to its end with
every pane drawing. The headless side prints its progress bars to the same kind of terminal. Each side is
timed by the engine itself: summary.json's `seconds`, the run's training time from its first step to its
end (evaluations and checkpoints included, set-up and imports not), the same measure on both sides. Runs
alternate between sides, each in a fresh process, and the ratio is of the medians.

The data are MNIST-shaped files under the mnist-mlp recipe, as a user trains the tutorial's recipe A.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import Result, interleaved, median
from benchmarks.pty_cockpit import Terminal, command, environment

TARGET = 0.98  # for runs of a minute or more; a short run is reported against it too, and the README says why
SETTLE_SECONDS = 3.0  # after the tabs have loaded: the data preview and the model summary finish meanwhile


@dataclass
class Setting:
    """One row: the terminal's size and the run's torch threads."""

    size: tuple[int, int]
    threads: int

    @property
    def name(self) -> str:
        return f"{self.size[0]}×{self.size[1]}, {self.threads} thread{'s' if self.threads > 1 else ''}"


def summary(runs_dir: Path) -> dict[str, Any]:
    """The one run folder's summary.json under runs_dir; it must say finished."""
    (path,) = runs_dir.glob("*/summary.json")
    data = json.loads(path.read_text())
    if data.get("state") != "finished":
        raise RuntimeError(f"{path.parent.name} ended {data.get('state')}: {data.get('reason')}")
    return data


def finished(runs_dir: Path, timeout: float) -> None:
    """Wait until the run's summary.json says it ended: read from disk, so the screen is never parsed while
    the run trains (that would take CPU from it, as no terminal emulator written in C would)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        for path in runs_dir.glob("*/summary.json"):
            try:
                if json.loads(path.read_text()).get("ended_at"):
                    return
            except (OSError, ValueError):  # being replaced right now
                pass
        time.sleep(0.5)
    raise TimeoutError(f"no run under {runs_dir} ended within {timeout:g} s")


def cockpit_run(argv: list[str], size: tuple[int, int], runs_dir: Path, timeout: float) -> dict[str, Any]:
    """One cockpit run drawn to a pty: the engine's seconds."""
    with Terminal([*argv, "--runs-dir", str(runs_dir)], size, env=environment()) as term:
        term.appears(r"torch \S+ loaded in", 0, timeout=300)
        time.sleep(SETTLE_SECONDS)
        start = term.mark()
        term.type(b"s")
        finished(runs_dir, timeout)
        term.appears(r"FINISHED", start, timeout=120)  # the cockpit has taken the end in: q quits at once
        term.exit_seconds(b"q", timeout=120)
        written = sum(len(chunk) for _, chunk in term.chunks[start:])
    return {"seconds": summary(runs_dir)["seconds"], "terminal_bytes_while_training": written}


def headless_run(argv: list[str], size: tuple[int, int], runs_dir: Path, timeout: float) -> dict[str, Any]:
    """One `--headless` run printing to a pty of the same size: the engine's seconds."""
    with Terminal([*argv, "--headless", "--runs-dir", str(runs_dir)], size, env=environment()) as term:
        term.proc.wait(timeout=timeout)
        written = sum(len(chunk) for _, chunk in term.chunks)
    return {"seconds": summary(runs_dir)["seconds"], "terminal_bytes": written}


def run(args: argparse.Namespace, mnist_root: Path) -> list[Result]:
    """P2 terminal rows: for each size and thread count, cockpit samples/s over headless samples/s."""
    n, epochs = args.mnist_size, (2 if args.quick else 20)
    sizes = [tuple(int(v) for v in size.split("x")) for size in args.pty_sizes.split(",")]
    threads = [int(t) for t in args.pty_threads.split(",")]
    samples = n * epochs
    argv = [*command(), "--recipe", "mnist-mlp", "--root", str(mnist_root), "--no-download", "--epochs", str(epochs),
            "--device", args.device]
    timeout = 600 if args.quick else 3600
    results = []
    for setting in (Setting(size, count) for size in sizes for count in threads):
        runs: dict[str, list[dict[str, Any]]] = {"headless": [], "cockpit": []}

        def side(name: str, setting: Setting = setting) -> float:
            with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as tmp:
                go = cockpit_run if name == "cockpit" else headless_run
                out = go([*argv, "--threads", str(setting.threads)], setting.size, Path(tmp), timeout)
            runs[name].append(out)
            return samples / out["seconds"]

        rates = interleaved({"headless": lambda: side("headless"), "cockpit": lambda: side("cockpit")},
                            args.repeats)
        base, ours = median(rates["headless"]), median(rates["cockpit"])
        seconds = median([r["seconds"] for r in runs["headless"]])
        results.append(Result(
            case="P2", measure=f"samples/s with the cockpit in a pty, {setting.name}: {n}×1×28×28 MNIST files, "
                               f"mnist-mlp, {epochs} epochs ({seconds:.0f} s runs)",
            value=ours / base, unit="x", target=TARGET, higher_is_better=True, baseline=f"{base:,.0f}/s",
            ours=f"{ours:,.0f}/s",
            raw={"size": list(setting.size), "threads": setting.threads, "samples_per_run": samples,
                 "headless_samples_per_s": rates["headless"], "cockpit_samples_per_s": rates["cockpit"],
                 "runs": runs, "timed_by": "summary.json seconds (the engine's training time)"},
        ))
    return results
