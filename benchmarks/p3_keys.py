"""P3: from a key typed at a real terminal to the screen showing its effect, for every key and view; and quit.

The real `ptviz-tui` runs in a pseudo-terminal of 160×48 that answers like tmux (benchmarks/pty_cockpit.py).
Each key is typed as a user types it, and the time runs until the text its effect draws has been written to
the terminal: the chart titles with "(log y)", the help screen, a tab's fields, a data view's heading, the
pipeline editor and its catalogue, a step added or removed, a value typed into a parameter, tiles of the
new zoom, the model tree collapsed or expanded. A round of KEYS leaves the cockpit as it found it; rounds
run idle, then while digits trains (a long run). Between keys the driver waits a random 50-250 ms, so
keys land at any moment of the cockpit's frames. Quit is timed from `q` to the process's end: idle, and
while training (`q`, then `q` again to confirm: the run stops and saves first).

The cockpit starts the way a user meets it: its first screen, then the Data and Model tabs once torch has
loaded; the rounds begin a few seconds after that, when the data preview and the model summary are done.

    python -m benchmarks.p3_keys child --rounds 5      # one measurement, JSON out
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from typing import Any

from benchmarks.common import Result
from benchmarks.p2_cockpit import run_module
from benchmarks.pty_cockpit import Terminal, command, environment

TARGET_MS = 100.0
QUIT_TARGET_MS = 500.0
SIZE = (160, 48)
SETTLE_SECONDS = 3.0  # after the tabs have loaded: the data preview and model summary finish meanwhile

# (typed, what it does, the text its effect draws): in this order a round leaves the cockpit as it found it.
KEYS: list[tuple[bytes, str, bytes]] = [
    (b"y", "y: charts on a log scale", rb"\(log y\)"),
    (b"y", "y: charts back on a linear scale", rb"loss / step(?! \(log)"),
    (b"?", "?: help screen", rb"ptviz-tui keys"),
    (b"?", "?: help closed", rb"loss / step"),
    (b"2", "2: Data tab", rb"batch size"),
    (b">", ">: Statistics view", rb"Images per class"),
    (b">", ">: Evaluation view", rb"Confusion matrix \(rows"),
    (b"<", "<: back to Statistics", rb"Images per class"),
    (b"<", "<: back to Samples", rb"train page \d"),
    (b"+", "+: images zoomed in", "╭(?:─){33,}╮".encode()),  # a tile's top border, two 16-cell images wide
    (b"-", "-: images zoomed out", "╭(?:─){17}╮".encode()),
    (b"o", "o: pipeline editor hidden", rb"train page \d"),
    (b"o", "o: pipeline editor shown", "a add · d remove".encode()),
    (b"a", "a: catalogue of transforms", rb"Add a transform"),
    (b"\r", "enter: transform added", rb"1 Resize\("),
    (b"d", "d: transform removed", rb"1 Normalize\("),
    (b"\r", "enter: into the parameter form", None),  # the keyboard moves; nothing new is drawn to wait for
    (b"5", "typing into a parameter (0.5 -> 0.55)", rb"0\.55"),
    (b"\x7f", "backspace in a parameter (0.55 -> 0.5)", rb"0\.5(?!5)"),
    (b"\x1b", "escape: out of the form", None),
    (b"3", "3: Model tab", rb"freeze backbone"),
    (b"<", "<: model tree one level less", "▶".encode()),
    (b">", ">: model tree one level more", rb"fc1"),
    (b"1", "1: Train tab", rb"loss / step"),
]
WHILE_TRAINING: list[tuple[bytes, str, bytes]] = [
    (b"p", "p: paused", rb"PAUSED"),
    (b"p", "p: running again", rb"RUNNING"),
]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(round(q)) - 1]


def _started(term: Terminal) -> None:
    term.appears(rb"torch \S+ loaded in", 0, timeout=300)
    time.sleep(SETTLE_SECONDS)


def _round(term: Terminal, keys, rng: random.Random, out: dict[str, list[float]]) -> None:
    """Type each key after a random pause and time it; keys with nothing to wait for are typed untimed,
    with time for escape's own wait (Textual waits 0.1 s for what may follow an escape)."""
    for typed, what, shows in keys:
        time.sleep(rng.uniform(0.05, 0.25))
        if shows is None:
            term.type(typed)
            time.sleep(0.3)
            continue
        out.setdefault(what, []).append(1000 * term.latency(typed, shows))


def measure(rounds: int, epochs: int, seed: int = 0) -> dict[str, Any]:
    """Every key `rounds` times idle and while training; quit idle and while training (milliseconds)."""
    rng = random.Random(seed)
    idle: dict[str, list[float]] = {}
    training: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as runs:
        argv = [*command(), "--runs-dir", runs, "--epochs", str(epochs), "--log-interval", "1"]
        with Terminal(argv, SIZE, env=environment()) as term:
            _started(term)
            for _ in range(rounds):
                _round(term, KEYS, rng, idle)
            quit_idle = 1000 * term.exit_seconds(b"q", timeout=60)
        with Terminal(argv, SIZE, env=environment()) as term:
            _started(term)
            term.latency(b"s", rb"RUNNING")
            term.appears(rb"Epoch 1, Loss", 0, timeout=300)  # the charts have data
            for _ in range(rounds):
                _round(term, KEYS + WHILE_TRAINING, rng, training)
            asked = 1000 * term.latency(b"q", rb"Stop and quit")
            quit_training = 1000 * term.exit_seconds(b"q", timeout=300)
    return {"idle_ms": idle, "training_ms": training, "quit_idle_ms": quit_idle, "quit_asked_ms": asked,
            "quit_training_ms": quit_training}


def child(argv: list[str]) -> None:
    """One measurement in this process; prints the latencies as JSON."""
    parser = argparse.ArgumentParser(prog="p3_keys child")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1000)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.rounds, args.epochs)))


def run(args: argparse.Namespace) -> list[Result]:
    """P3 rows: for each key, p95 (and p50) idle and while training; all keys together; quit."""
    rounds = 2 if args.quick else 5
    out = run_module("benchmarks.p3_keys", ["--rounds", str(rounds)])
    rows = []
    for where, key in (("idle", "idle_ms"), ("while training", "training_ms")):
        every = [v for values in out[key].values() for v in values]
        rows.append(Result(
            case="P3", measure=f"every key to its screen, {where} (p95 of {len(every)} presses, {len(out[key])} keys)",
            value=percentile(every, 95), unit="ms", target=TARGET_MS, higher_is_better=False,
            ours=f"p50 {percentile(every, 50):.3g} ms", raw={"per_key_ms": out[key]}))
    for what in out["training_ms"]:
        for where, key in (("idle", "idle_ms"), ("while training", "training_ms")):
            values = out[key].get(what)
            if not values:
                continue
            rows.append(Result(
                case="P3", measure=f"  {what}, {where}", value=percentile(values, 95), unit="ms", target=TARGET_MS,
                higher_is_better=False, ours=f"p50 {percentile(values, 50):.3g} ms",
                raw={"latencies_ms": values, "max_ms": max(values)}))
    rows.append(Result(case="P3", measure="q to the process's end, idle", value=out["quit_idle_ms"], unit="ms",
                       target=QUIT_TARGET_MS, higher_is_better=False, raw={"ms": out["quit_idle_ms"]}))
    rows.append(Result(case="P3", measure="q q to the process's end while training (the run stops and saves)",
                       value=out["quit_training_ms"], unit="ms", target=None, higher_is_better=False,
                       ours=f"asked in {out['quit_asked_ms']:.3g} ms", raw={"ms": out["quit_training_ms"]}))
    return rows


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["child"]:
        child(sys.argv[2:])
    else:
        raise SystemExit("run the benchmark with benchmarks/bench.py --only P3")
