"""A full disk: the last good checkpoint stays, the user is told 'no space left on <folder>', the run pauses
(cockpit) or stops cleanly (headless), summary.json records how it ended, and no log line is left half written."""

from __future__ import annotations

import errno
import io
import json
import os
import re
from pathlib import Path

import pytest

from ptviz.engine.commands import Resume, SaveCheckpoint, Stop
from ptviz.engine.events import CheckpointSaved, Notice, Paused, RunFinished, StepMetrics
from ptviz.engine import loop
from ptviz.engine.loop import train
from ptviz.engine.session import TrainingSession
from ptviz.engine.sinks import ListSink
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage import runlog
from ptviz.engine.storage.logrows import read_rows
from ptviz.engine.storage.runlog import RunLog
from ptviz.tui.cli import main


def small(config, epochs=3):
    config.data.batch_size = 128  # 12 steps per epoch
    config.train.epochs = epochs
    config.train.log_interval = 1
    config.output.checkpoint_minutes = 0
    return config


def only_run(config) -> Path:
    (run,) = Path(config.output.runs_dir).iterdir()
    return run


class FullDisk(io.FileIO):
    """A file on a disk that fills up after `room` bytes: writes past it raise ENOSPC, as the kernel's do."""

    room = 1000

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


class Disk:
    """Decides which checkpoint writes find the disk full (those from the `full_from`-th on, until freed)."""

    def __init__(self, full_from: int):
        self.full_from, self.writes, self.freed = full_from, 0, False

    def open(self, path, mode="r", *args, **kwargs):
        if "w" in mode and Path(path).name.endswith(".tmp") and Path(path).parent.name == "checkpoints":
            self.writes += 1
            if self.writes >= self.full_from and not self.freed:
                return FullDisk(path, "w")  # torch.save meets the full disk halfway through the file
        return open(path, mode, *args, **kwargs)


def test_a_full_disk_at_a_checkpoint_keeps_the_last_good_one_and_stops_headless(digits_config, monkeypatch,
                                                                               capsys):
    """Epoch 1 saves once (epoch-0001, with last and best linked to it); epoch 2's write finds the disk full."""
    monkeypatch.setattr(ckpt, "open", Disk(full_from=2).open, raising=False)
    runs = Path(digits_config.output.runs_dir)
    code = main(["--headless", "--runs-dir", str(runs), "--batch-size", "128", "--epochs", "3",
                 "--checkpoint-minutes", "0"])
    out = capsys.readouterr()
    (run,) = runs.iterdir()
    folder = run / "checkpoints"
    assert f"checkpoint not saved: no space left on {folder}; the last good checkpoint (best.pt, step 12) is kept. " \
           f"Stopping" in out.out
    assert "inline_container" not in out.out + out.err and "unexpected pos" not in out.out + out.err
    assert code == 0 and f"stopped at step 24: no space left on {folder}" in out.out
    state, path, skipped = ckpt.load_newest(run)
    assert (state["step"], skipped) == (12, []) and path.name in ("best.pt", "last.pt", "epoch-0001.pt")  # one file
    assert ckpt.load_checkpoint(folder / "last.pt")["step"] == 12  # untouched by the failed write
    assert not list(folder.glob(".*.tmp"))
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["state"], summary["step"], summary["reason"]) == ("stopped", 24, f"no space left on {folder}")
    steps = [r["step"] for r in read_rows(run / "metrics.jsonl") if r["kind"] == "step"]
    assert steps == list(range(1, 25))


async def test_a_full_disk_pauses_a_cockpit_run_and_the_save_succeeds_once_space_is_freed(digits_config,
                                                                                           monkeypatch):
    """The periodic save at step 5 finds the disk full: the run pauses there and saves once resumed."""
    disk = Disk(full_from=1)
    monkeypatch.setattr(ckpt, "open", disk.open, raising=False)
    config = small(digits_config, epochs=1000)
    config.output.checkpoint_steps = 5
    session = TrainingSession(config)  # the cockpit's session pauses on trouble
    session.start()
    notice = await session.next_event(Notice)
    assert "checkpoint not saved: no space left on" in notice.text and notice.text.endswith(
        "no checkpoint of this session was saved yet. Paused: free some space, then resume")
    paused = await session.next_event(Paused)
    assert paused.step == 5
    session.send(SaveCheckpoint())  # asked for while the disk is still full: refused at once, still paused
    refused = await session.next_event(Notice)
    assert refused.text.startswith("checkpoint not saved: no space left on")
    disk.freed = True
    session.send(Resume())
    saved = await session.next_event(CheckpointSaved)  # the held save is tried again, at the same step
    assert (saved.step, saved.reason) == (5, "periodic")
    assert ckpt.load_checkpoint(saved.path)["step"] == 5
    session.send(Stop())
    finished = await session.next_event(RunFinished)
    assert finished.state == "stopped" and finished.step >= 5
    assert session.stop(timeout=30)


def failing_writes(monkeypatch, name: str, from_step: int):
    """Make os.write to the file called `name` fail with ENOSPC, half written, once it carries step `from_step`
    or later (until `freed`)."""
    real, state = os.write, {"freed": False}

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        steps = [int(s) for s in re.findall(rb'"kind":"step","step":(\d+)', bytes(data))]
        if target.endswith(name) and not state["freed"] and max(steps, default=0) >= from_step:
            real(fd, bytes(data)[: len(data) // 2])  # part of it lands, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return state


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the log's descriptor through /proc")
@pytest.mark.parametrize("emit_seconds", [0.0, 1e9], ids=["rows-each-step", "rows-only-at-the-epoch-save"])
def test_a_full_disk_under_the_run_log_stops_cleanly_and_records_the_state(digits_config, monkeypatch,
                                                                            emit_seconds):
    """However the rows are batched (on a fast machine the epoch's rows are written by the epoch's save),
    the log's failure is reported as the log's, not as the checkpoint's that found it."""
    monkeypatch.setattr(loop, "READ_SECONDS", emit_seconds)
    monkeypatch.setattr(loop, "EMIT_SECONDS", emit_seconds)
    failing_writes(monkeypatch, "metrics.jsonl", from_step=15)
    config = small(digits_config, epochs=3)
    sink = ListSink()
    finished = train(config, sink)
    run = only_run(config)
    assert finished.state == "stopped" and finished.reason == f"no space left on {run}"
    assert any(n.text.startswith(f"the run log could not be written: no space left on {run}") for n in sink.of(Notice))
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["state"], summary["reason"]) == ("stopped", f"no space left on {run}")
    text = (run / "metrics.jsonl").read_bytes()
    assert text.endswith(b"\n")  # the half-written line was cut off again
    steps = [r["step"] for r in read_rows(run / "metrics.jsonl") if r["kind"] == "step"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) < finished.step
    state, _, _ = ckpt.load_newest(run)
    assert state["step"] <= steps[-1]  # no checkpoint claims steps the log does not hold


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the log's descriptor through /proc")
def test_run_log_rows_that_hit_a_full_disk_are_written_once_space_is_back(tmp_path, monkeypatch):
    """Every row lands exactly once, in order, and never half: the failure goes to on_error, not up the stack."""
    disk = failing_writes(monkeypatch, "metrics.jsonl", from_step=3)
    errors = []
    log = RunLog(tmp_path, tensorboard=False, on_error=lambda exc, folder: errors.append((exc.errno, folder)))
    for step in range(1, 6):
        log.emit(StepMetrics(steps=(step,), losses=(1.0 / step,), lrs=(0.1,), epoch=1, epoch_step=step,
                             samples_per_s=10.0, elapsed=float(step)))
        if step == 4:
            assert [r["step"] for r in read_rows(tmp_path / "metrics.jsonl")] == [1, 2]
            assert (tmp_path / "metrics.jsonl").read_bytes().endswith(b"\n")
            disk["freed"] = True
    log.close()
    assert errors[0] == (errno.ENOSPC, tmp_path)
    assert [r["step"] for r in read_rows(tmp_path / "metrics.jsonl")] == [1, 2, 3, 4, 5]
    csv_steps = [line.split(",")[1] for line in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert csv_steps == ["1", "2", "3", "4", "5"]


def test_summary_is_rewritten_in_place_when_no_new_file_fits(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    runlog.write_json(path, {"state": "running", "step": 3})
    real_open = open

    def no_new_files(file, mode="r", *args, **kwargs):
        if Path(file).name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(runlog, "open", no_new_files, raising=False)
    runlog.write_json(path, {"state": "stopped", "step": 7, "reason": "no space left on x"}, durable=True)
    assert json.loads(path.read_text()) == {"state": "stopped", "step": 7, "reason": "no space left on x"}
    assert not list(tmp_path.glob(".*.tmp"))
