"""train.threads: torch's intra-op thread count, set on the training thread for the run, chosen by load on auto."""

from __future__ import annotations

import pytest
import torch

from ptviz.engine import config as cfgmod
from ptviz.engine import cpu_threads
from ptviz.engine.events import RunStarted, StepMetrics
from ptviz.engine.loop import train
from ptviz.tui.cli import main

CPU = torch.device("cpu")


class Probe:
    """A load probe that reports a fixed number of busy cores."""

    def __init__(self, busy):
        self.busy = busy

    def busy_cores(self):
        return self.busy


@pytest.mark.parametrize(("busy", "threads"), [(0.0, 2), (0.3, 2), (0.7, 1), (1.9, 1), (3.5, 1), (None, 2)])
def test_auto_gives_one_thread_per_idle_core(monkeypatch, busy, threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(cpu_threads, "cores", lambda: 2)
    choice = cpu_threads.choose(0, CPU, Probe(busy))
    assert choice.threads == threads and choice.why.startswith("auto")


def test_a_set_count_or_omp_num_threads_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads.choose(0, CPU, Probe(2.0)) == cpu_threads.ThreadChoice(3, "OMP_NUM_THREADS")
    assert cpu_threads.choose(2, CPU, Probe(2.0)) == cpu_threads.ThreadChoice(2, "train.threads")


def test_the_probe_counts_the_cpu_time_of_other_processes():
    """A spinning process's CPU time (read from /proc) is in what the probe reports, however loaded the machine."""
    import os
    import subprocess
    import sys
    import time

    if cpu_threads.LoadProbe().start is None:
        pytest.skip("no /proc/stat here")

    def cpu_seconds(pid):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    spinner = subprocess.Popen([sys.executable, "-c", "print(flush=True)\nwhile True: pass"], stdout=subprocess.PIPE)
    try:
        spinner.stdout.readline()  # it is spinning
        probe, used, start = cpu_threads.LoadProbe(), cpu_seconds(spinner.pid), time.monotonic()
        busy = probe.busy_cores(1.0)
        spinner_cores = (cpu_seconds(spinner.pid) - used) / (time.monotonic() - start)
    finally:
        spinner.kill()
        spinner.wait()
    assert spinner_cores > 0.1 and busy >= spinner_cores - 0.1


def test_field_flag_and_form_text(tmp_path, capsys):
    assert cfgmod.parse_text("train.threads", "auto") == 0 and cfgmod.parse_text("train.threads", " 2 ") == 2
    assert cfgmod.check_field("train.threads", -1) == "must be >= 0"
    assert "train.threads" in cfgmod.field_docs()
    code = main(["--headless", "--threads", "1", "--max-steps", "3", "--runs-dir", str(tmp_path / "runs")])
    assert code == 0 and "device CPU (1 thread)" in capsys.readouterr().out


def test_the_run_sets_its_count_on_the_training_thread_and_gives_the_previous_one_back(digits_config, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    seen = []

    class Sink:
        def emit(self, event):
            if isinstance(event, (RunStarted, StepMetrics)):
                seen.append((event, torch.get_num_threads()))  # the sink runs on the training thread

    torch.set_num_threads(2)
    try:
        digits_config.train.max_steps = 3
        digits_config.train.threads = 1
        train(digits_config, Sink())
        assert torch.get_num_threads() == 2
        started = seen[0][0]
        assert (started.threads, started.threads_why, started.device_name) == (1, "train.threads", "CPU (1 thread)")
        assert {n for _, n in seen} == {1}
        seen.clear()
        digits_config.train.threads = 0  # auto, no OMP_NUM_THREADS: measured
        train(digits_config, Sink())
        started = seen[0][0]
        assert started.threads_why.startswith("auto:") and started.device_name.endswith(", auto)")
        assert 1 <= started.threads <= cpu_threads.cores() and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
