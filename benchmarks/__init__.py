"""Benchmarks: ptviz-tui against the loop users would write themselves (run benchmarks/bench.py)."""
