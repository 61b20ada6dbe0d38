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
