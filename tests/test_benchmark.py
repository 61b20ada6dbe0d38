"""The benchmark's one command still runs against the current engine and writes its JSON (no speed asserted)."""

import json
import subprocess
import sys
from pathlib import Path

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


def test_bench_cockpit_cases_quick_write_their_rows(tmp_path):
    """P2..P5 in quick mode: every row in the table and the JSON, with the evidence each row rests on."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--only", "P2", "--only", "P3", "--only", "P4", "--only", "P5", "--quick",
         "--repeats", "1", "--mnist-size", "600", "--device", "cpu", "--threads", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    for text in ("samples/s with the cockpit: digits", "samples/s with the cockpit: 600×1×28×28",
                 "key y to its action", "key y to the charts repainted", "full redraw of 5 charts, 1,000,000 steps",
                 "history memory, 1,000,000 steps", "ptviz-tui --help (torch not imported)", "first painted screen"):
        assert text in done.stdout, text
    (report,) = tmp_path.glob("bench-*.json")
    rows = json.loads(report.read_text())["results"]
    assert [r["case"] for r in rows] == ["P2"] * 2 + ["P3"] * 2 + ["P4"] * 6 + ["P5"] * 2
    for row in rows[:2]:  # the cockpit really drew while it trained, on the Train tab, every step's point
        (run,) = row["raw"]["cockpit_runs"]
        assert run["tab"] == "train" and run["charts_on_screen"] == 5 and run["chart_replots"] > 0
        assert run["frames"] > 0 and run["step_points"] > 0 and row["value"] > 0
    assert rows[0]["raw"]["samples_per_run"] == 1438 * 5
    assert len(rows[2]["raw"]["latencies_ms"]) == 10 and rows[2]["target"] == 100
    assert [r["raw"]["points"] for r in rows[4:10:2]] == [10_000, 100_000, 1_000_000]
    assert rows[9]["unit"] == "MB" and rows[9]["target"] == 50 and rows[8]["target"] == 30
    assert rows[10]["raw"]["torch_imported"] is False and rows[10]["target"] == 0.5
    assert rows[11]["target"] is None and rows[11]["met"] is None and rows[11]["value"] > 0
