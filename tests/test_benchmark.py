"""The benchmark's one command still runs against the current engine and writes its JSON (no speed asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py"


def test_bench_p1_quick_writes_a_table_and_json(tmp_path):
    """A tiny P1 run prints both rows and records every repeat and both sides' accuracy."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--only", "P1", "--quick", "--repeats", "1", "--mnist-size", "300",
         "--device", "cpu", "--threads", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "samples/s: 300×1×28×28 in memory" in done.stdout and "samples/s: digits" in done.stdout
    (report,) = tmp_path.glob("bench-*.json")
    data = json.loads(report.read_text())
    rows = data["results"]
    assert [r["case"] for r in rows] == ["P1", "P1"]
    for row in rows:
        raw = row["raw"]
        assert len(raw["tutorial_samples_per_s"]) == len(raw["engine_samples_per_s"]) == 1
        assert row["value"] > 0 and row["target"] == 1.2
        assert 0.0 <= raw["engine_test_accuracy"][0] <= 1.0
    assert rows[1]["raw"]["samples_per_run"] == 1438 * 3
    assert data["machine"]["torch_threads"] == 1


def quick_bench(tmp_path, *cases: str) -> tuple[str, list[dict]]:
    """Run bench.py --quick on `cases` in its own process: its table and the JSON rows."""
    only = [arg for case in cases for arg in ("--only", case)]
    done = subprocess.run(
        [sys.executable, str(BENCH), *only, "--quick", "--repeats", "1", "--mnist-size", "600", "--device", "cpu",
         "--threads", "1", "--pty-sizes", "80x24", "--pty-threads", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr
    (report,) = tmp_path.glob("bench-*.json")
    return done.stdout, json.loads(report.read_text())["results"]


def test_bench_cockpit_cases_quick_write_their_rows(tmp_path):
    """P2, P4 and P5 in quick mode: every row in the table and the JSON, with the evidence each row rests on."""
    out, rows = quick_bench(tmp_path, "P2", "P4", "P5")
    for text in ("samples/s with the cockpit: digits", "samples/s with the cockpit: 600×1×28×28",
                 "samples/s with the cockpit in a pty, 80×24, 1 thread",
                 "full redraw of 5 charts, 1,000,000 steps", "history memory, 1,000,000 steps",
                 "ptviz-tui --help (torch not imported)", "first painted screen"):
        assert text in out, text
    p2 = [r for r in rows if r["case"] == "P2"]
    assert len(p2) == 3 and [r["case"] for r in rows[-2:]] == ["P5", "P5"]
    for row in p2[:2]:  # the cockpit really drew while it trained, on the Train tab, every step's point
        (run,) = row["raw"]["cockpit_runs"]
        assert run["tab"] == "train" and run["charts_on_screen"] == 5 and run["chart_replots"] > 0
        assert run["frames"] > 0 and run["step_points"] > 0 and row["value"] > 0
    assert p2[0]["raw"]["samples_per_run"] == 1438 * 5
    (pty_run,) = p2[2]["raw"]["runs"]["cockpit"]  # the cockpit drew to the terminal while the run trained
    assert p2[2]["raw"]["size"] == [80, 24] and pty_run["terminal_bytes_while_training"] > 10_000
    p4 = [r for r in rows if r["case"] == "P4"]
    assert [r["raw"]["points"] for r in p4[0:6:2]] == [10_000, 100_000, 1_000_000]
    assert p4[5]["unit"] == "MB" and p4[5]["target"] == 50 and p4[4]["target"] == 30
    assert rows[-2]["raw"]["torch_imported"] is False and rows[-2]["target"] == 0.5
    assert rows[-1]["target"] == 1.5 and rows[-1]["value"] > 0


def test_the_benchmarks_screen_applies_moves_styles_erases_and_split_sequences():
    """What P3 reads the cockpit's screen with: text lands where the cursor was moved, styles are dropped,
    erases blank, a sequence or character split across two reads is still whole."""
    sys.path.insert(0, str(BENCH.parents[1]))
    from benchmarks.screen import Screen

    screen = Screen(12, 3)
    screen.feed(b"\x1b[?1049h\x1b[2;3Hab\x1b[38;2;1;2;3mc\x1b[0m\x1b[1;1Hxy\x1b[3")
    screen.feed(b";5H\xe2\x94")  # the move and the box-drawing character arrive in two reads
    screen.feed(b"\x80z\x1b[2;4H\x1b[K")
    assert screen.text().split("\n") == ["xy          ", "  a         ", "    ─z      "]


def test_thread_clock_splits_the_threads_alive_at_the_start_from_those_started_since():
    """CPU time read from /proc: the main thread's own, and a thread started later counts apart, with what it
    used, after it has ended; a name with spaces and parentheses is read whole."""
    import os
    import threading
    import time

    sys.path.insert(0, str(BENCH.parents[1]))
    from benchmarks.thread_clock import ThreadClock, cpu_seconds

    name, seconds = cpu_seconds("42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0")
    assert name == "a (b) c" and seconds == pytest.approx(400 / os.sysconf("SC_CLK_TCK"))

    def burn(until: float) -> None:
        while time.thread_time() < until:
            pass

    clock = ThreadClock(os.getpid())
    clock.start()
    burn(time.thread_time() + 0.2)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (burn(time.thread_time() + 0.2), done.wait(10)))
    worker.start()
    while worker.is_alive() and not done.is_set():
        clock.sample()
        time.sleep(0.05)
        if clock.since_start(worker.native_id) >= 0.15:
            break
    done.set()
    worker.join()
    clock.sample()
    report = clock.report()
    assert report["main_thread"] >= 0.15 and report["threads_before_start"] >= 0.15
    assert report["threads_started_since"] >= 0.15
