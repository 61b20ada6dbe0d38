"""P3: from a key typed at a real terminal to the screen showing its effect, for every key and view; and quit.

The real `ptviz-tui` runs in a pseudo-terminal of 160×48 that answers like tmux (benchmarks/pty_cockpit.py).
Each key is typed as a user types it, and the time runs until the output that makes the terminal's screen
(kept by benchmarks/screen.py from what the cockpit wrote) show the key's effect has arrived: the chart
titles with "(log y)", the help screen, a tab's fields, a data view's heading, the
pipeline editor and its catalogue, a step added or removed, a value typed into a parameter, tiles of the
new zoom, the model tree collapsed or expanded. A round of KEYS leaves the cockpit as it found it; rounds
run idle, then while digits trains (a long run). Between keys the driver waits a random 50-250 ms, so
keys land at any moment of the cockpit's frames. A key whose effect has not shown after MISSED_SECONDS
counts at that time, is named in the table, and ends its round. Quit is timed from `q` to the process's end: idle, and
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
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import Result
from benchmarks.p2_cockpit import run_module
from benchmarks.pty_cockpit import Terminal, command, environment

TARGET_MS = 100.0
QUIT_TARGET_MS = 500.0
SIZE = (160, 48)
MISSED_SECONDS = 10.0  # a key's effect not shown by then is counted as missed
SETTLE_SECONDS = 3.0  # after the tabs have loaded: the data preview and model summary finish meanwhile

MEAN_FIELD_5 = r"mean per channel \(1 value\)[^\n]*\n[^\n]{64}5 "

# (typed, what it does, the text its effect draws; "-" before it: the text its effect takes away): in this
# order a round leaves the cockpit as it found it.
KEYS: list[tuple[bytes, str, str | None]] = [
    (b"y", "y: charts on a log scale", r"\(log y\)"),
    (b"y", "y: charts back on a linear scale", r"loss / step(?! \(log)"),
    (b"?", "?: help screen", r"ptviz-tui keys"),
    (b"?", "?: help closed", "-ptviz-tui keys"),
    (b"2", "2: Data tab", r"batch size"),
    (b">", ">: Statistics view", r"Images per class"),
    (b">", ">: Evaluation view", r"Confusion matrix \(rows"),
    (b"<", "<: back to Statistics", r"Images per class"),
    (b"<", "<: back to Samples", r"train page \d"),
    (b"+", "+: images zoomed in", "╭(?:─){33,}╮"),  # a tile's top border, two 16-cell images wide
    (b"-", "-: images zoomed out", "╭(?:─){17}╮"),
    (b"o", "o: pipeline editor hidden", "-a add · d remove"),
    (b"o", "o: pipeline editor shown", "a add · d remove"),
    (b"a", "a: catalogue of transforms", r"Add a transform"),
    (b"\r", "enter: transform added", r"1 Resize\("),
    (b"d", "d: transform removed", r"1 Normalize\("),
    (b"\r", "enter: into the parameter form", None),  # the keyboard moves; nothing new is drawn to wait for
    # The form's field starts selected: a typed 5 replaces its 0.5 (the field: column 64, below its label).
    (b"5", "typing into a parameter (0.5 -> 5)", MEAN_FIELD_5),
    (b"\x7f", "backspace in a parameter (5 -> empty)", "-" + MEAN_FIELD_5),
    (b"0.5", "typing 0.5 back", None),
    (b"\x1b", "escape: out of the form", None),
    (b"3", "3: Model tab", r"freeze backbone"),
    (b"<", "<: model tree one level less", "▶"),
    (b">", ">: model tree one level more", r"├ fc1 +Linear"),  # a tree row: the health heatmap names fc1 too
    (b"1", "1: Train tab", r"loss / step"),
]
WHILE_TRAINING: list[tuple[bytes, str, str | None]] = [
    (b"p", "p: paused", r"PAUSED"),
    (b"p", "p: running again", r"RUNNING"),
]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(round(q)) - 1]


def _started(term: Terminal) -> None:
    term.appears(r"torch \S+ loaded in", 0, timeout=300)
    time.sleep(SETTLE_SECONDS)


def _round(term: Terminal, keys, rng: random.Random, out: dict[str, list[float]], missed: list[str]) -> bool:
    """Type each key after a random pause and time it; keys with nothing to wait for are typed untimed,
    with time for escape's own wait (Textual waits 0.1 s for what may follow an escape). A key whose effect
    does not show within MISSED_SECONDS ends the round (the cockpit is no longer where the round expects):
    it is named in `missed`, and False returned."""
    for typed, what, shows in keys:
        time.sleep(rng.uniform(0.05, 0.25))
        if shows is None:
            term.type(typed)
            time.sleep(0.3)
            continue
        gone = shows.startswith("-")
        try:
            out.setdefault(what, []).append(1000 * term.latency(typed, shows[gone:], MISSED_SECONDS, gone=gone))
        except (TimeoutError, ValueError) as exc:  # counted at the time waited: a missed key is no faster than that
            out.setdefault(what, []).append(1000 * MISSED_SECONDS)
            missed.append(what)
            print(f"missed: {what}\n{exc}", file=sys.stderr)
            return False
    return True


def measure(rounds: int, epochs: int, seed: int = 0) -> dict[str, Any]:
    """Every key `rounds` times idle and while training; quit idle and while training (milliseconds)."""
    rng = random.Random(seed)
    idle: dict[str, list[float]] = {}
    training: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="ptviz-bench-") as runs:
        argv = [*command(), "--runs-dir", runs, "--epochs", str(epochs), "--log-interval", "1"]
        with Terminal(argv, SIZE, env=environment()) as term:
            _started(term)
            missed_idle: list[str] = []
            for _ in range(rounds):
                if not _round(term, KEYS, rng, idle, missed_idle):
                    break
            quit_idle = 1000 * term.exit_seconds(b"q", timeout=60)
        with Terminal(argv, SIZE, env=environment()) as term:
            _started(term)
            term.latency(b"s", r"RUNNING")
            term.appears(r"Epoch 1, Loss", 0, timeout=300)  # the charts have data
            missed_training: list[str] = []
            for _ in range(rounds):
                if not _round(term, KEYS + WHILE_TRAINING, rng, training, missed_training):
                    term.type(b"\x1b")  # escape whatever is open, then back to the Train tab
                    time.sleep(0.5)
                    term.type(b"1")
                    time.sleep(2)
                    break
            try:
                asked = 1000 * term.latency(b"q", r"Stop and quit")
                quit_training = 1000 * term.exit_seconds(b"q", timeout=300)
            except (TimeoutError, ValueError) as exc:  # the cockpit is not where the rounds left it: say so
                print(f"quit while training not timed: {exc}", file=sys.stderr)
                asked = quit_training = float("nan")
    return {"idle_ms": idle, "training_ms": training, "missed_idle": missed_idle, "missed_training": missed_training,
            "quit_idle_ms": quit_idle, "quit_asked_ms": asked,
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
    rounds = 1 if args.quick else 5
    out = run_module("benchmarks.p3_keys", ["--rounds", str(rounds)])
    rows = []
    for where, key, missed in (("idle", "idle_ms", "missed_idle"), ("while training", "training_ms", "missed_training")):
        every = [v for values in out[key].values() for v in values] or [float("nan")]
        lost = f"; NOT SHOWN within {MISSED_SECONDS:g} s: {', '.join(out[missed])}" if out[missed] else ""
        rows.append(Result(
            case="P3", measure=f"every key to its screen, {where} (p95 of {len(every)} presses, {len(out[key])} "
                               f"keys{lost})",
            value=percentile(every, 95), unit="ms", target=TARGET_MS, higher_is_better=False,
            ours=f"p50 {percentile(every, 50):.3g} ms", raw={"per_key_ms": out[key], "missed": out[missed]}))
    for what in dict.fromkeys(what for _, what, shows in KEYS + WHILE_TRAINING if shows is not None):
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
