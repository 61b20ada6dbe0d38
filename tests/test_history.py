"""The run log's binary copy and its reader: reduced series, events, following, and cutting back at a checkpoint."""

from pathlib import Path

import numpy as np
import pytest

from ptviz.engine.events import CheckpointSaved, EpochEnded, Notice, Paused, RunFailed, StepMetrics
from ptviz.engine.storage import history, logrows, steplog
from ptviz.engine.storage.runlog import RunLog


def points(first, last, epoch=1, loss=None, lr=0.1):
    """StepMetrics for steps first..last (losses `loss(step)`, default a decaying curve)."""
    steps = tuple(range(first, last + 1))
    losses = tuple(loss(s) if loss else 2.0 / s for s in steps)
    return StepMetrics(steps=steps, losses=losses, lrs=(lr,) * len(steps), epoch=epoch, epoch_step=last,
                       samples_per_s=100.0 + last, elapsed=last / 10)


def epoch_end(epoch, step):
    return EpochEnded(epoch=epoch, step=step, train_loss=0.5, train_accuracy=0.9, test_loss=0.4, test_accuracy=0.91,
                      val_loss=None, val_accuracy=None, seconds=1.0, lr=0.1)


def write_log(run_dir, events):
    with RunLog(run_dir, tensorboard=False) as log:
        for event in events:
            log.emit(event)


def full_rows(run_dir):
    """(step rows, other rows) of metrics.jsonl read the slow way, for comparison."""
    rows = logrows.read_rows(run_dir / "metrics.jsonl")
    return [r for r in rows if r["kind"] == "step"], [r for r in rows if r["kind"] != "step"]


def test_a_short_history_loads_every_step_and_every_other_event(tmp_path):
    """Fewer steps than twice the buckets: each step is a point, values as the JSONL holds them."""
    events = [points(1, 30), epoch_end(1, 30), Notice("warning", "hé"), points(31, 45, epoch=2)]
    write_log(tmp_path, events)
    snap = history.load(tmp_path, buckets=100)
    steps, others = full_rows(tmp_path)
    loss = snap.series["loss"]
    assert loss.bucket == 1 and loss.x.tolist() == [r["step"] for r in steps]
    assert loss.y.tolist() == [r["loss"] for r in steps]
    assert snap.series["samples_per_s"].y[-1] == 145.0 and snap.steps == 45
    assert snap.events == [logrows.event_of(r) for r in others] == [epoch_end(1, 30), Notice("warning", "hé")]
    assert snap.last.steps == (45,) and snap.last.epoch == 2 and snap.last.elapsed == 4.5
    assert snap.end == (tmp_path / "metrics.jsonl").stat().st_size
    records = history.read_steps(tmp_path, 10, 12)
    assert records["step"].tolist() == [11, 12] and records["loss"].tolist() == [2.0 / 11, 2.0 / 12]


def test_a_long_history_is_reduced_to_bucket_minima_and_maxima(tmp_path):
    """10,000 steps into 100 buckets: 200 points per series, each bucket's extremes, a spike and a NaN kept right."""
    spike, gap = 4321, 777

    def loss(step):
        return 50.0 if step == spike else float("nan") if step == gap else 1.0 + np.sin(step / 50.0)

    write_log(tmp_path, [points(first, first + 999, epoch=1 + first // 1000, loss=loss)
                         for first in range(1, 10_000, 1000)])
    snap = history.load(tmp_path, buckets=100)
    reduced = snap.series["loss"]
    assert len(reduced) == 200 and reduced.bucket == 100
    y = np.array([loss(s) for s in range(1, 10_001)])
    buckets = y.reshape(100, 100)
    assert np.allclose(reduced.y.reshape(100, 2).max(1), np.nanmax(buckets, 1))
    assert np.allclose(reduced.y.reshape(100, 2).min(1), np.nanmin(buckets, 1))
    assert spike in reduced.x and 50.0 in reduced.y and gap not in reduced.x
    assert np.all(np.diff(reduced.x) >= 0)
    assert reduced.sums.sum() == pytest.approx(np.nansum(y)) and reduced.counts.sum() == 9_999


def test_a_log_without_the_binary_copy_reads_the_same(tmp_path):
    """Runs written before steps.bin existed (or whose copy is damaged) are parsed from the JSONL."""
    events = [points(1, 500), epoch_end(1, 500), Paused(500), points(501, 900, epoch=2)]
    write_log(tmp_path, events)
    with_copy = history.load(tmp_path, buckets=50)
    (tmp_path / "steps.bin").unlink()
    (tmp_path / "events.idx").write_bytes(b"junk")
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"kind":"step","st')  # a row cut short by a kill
    without = history.load(tmp_path, buckets=50)
    for name in history.DEFAULT_COLUMNS:
        for field in ("x", "y", "sums", "counts"):
            assert np.array_equal(getattr(with_copy.series[name], field), getattr(without.series[name], field))
    assert without.events == with_copy.events and without.last == with_copy.last
    assert without.end == with_copy.end


def test_rows_the_copy_missed_are_read_from_the_jsonl(tmp_path):
    """A process killed between writing the JSONL and the copy: the last rows still load, once."""
    write_log(tmp_path, [points(1, 100), epoch_end(1, 100), points(101, 150, epoch=2)])
    expected = history.load(tmp_path, buckets=1000)
    bin_path = tmp_path / "steps.bin"
    bin_path.write_bytes(bin_path.read_bytes()[: -50 * steplog.STEP_DTYPE.itemsize - 10])  # last emit lost, torn
    got = history.load(tmp_path, buckets=1000)
    assert got.series["loss"].x.tolist() == expected.series["loss"].x.tolist() == list(range(1, 151))
    assert got.events == expected.events and got.last == expected.last


def test_follower_goes_on_from_a_snapshot_and_notices_a_cut_back(tmp_path):
    write_log(tmp_path, [points(1, 10)])
    snap = history.load(tmp_path)
    follower = history.Follower(tmp_path, snap.end)
    assert follower.poll() == []
    log = tmp_path / "metrics.jsonl"
    line = logrows.encode(logrows.rows_of(epoch_end(1, 10), 0.0)) + logrows.encode(logrows.rows_of(points(11, 12), 0.0))
    with open(log, "a") as fh:
        fh.write(line[:9])  # a writer caught mid-line
    assert follower.poll() == []
    with open(log, "a") as fh:
        fh.write(line[9:])
    new = follower.poll()
    assert new[0] == epoch_end(1, 10) and new[1].steps == (11, 12)
    with open(log, "r+") as fh:
        fh.truncate(100)
    assert follower.poll() == [] and follower.cut_back


def test_the_cut_at_a_checkpoint_is_just_after_its_own_row(tmp_path):
    write_log(tmp_path, [points(1, 10), CheckpointSaved("last.pt", 10, 0, "periodic", save_id="a"),
                         points(11, 20), CheckpointSaved("last.pt", 20, 0, "periodic", save_id="b"), points(21, 23)])
    data = (tmp_path / "metrics.jsonl").read_bytes()
    end_of_a = data.index(b"\n", data.index(b'"save_id":"a"')) + 1
    cut = history.checkpoint_cut(tmp_path, "a", 10)
    assert cut == history.Cut(jsonl=end_of_a, steps=10, events=1, csv_lines=10)
    snap = history.load(tmp_path, cut=cut)
    assert snap.series["loss"].x.tolist() == list(range(1, 11)) and snap.end == end_of_a
    # Without its row (killed between writing the file and logging it): up to the first row past its step.
    cut = history.checkpoint_cut(tmp_path, "missing", 15)
    end_of_15 = data.index(b"\n", data.index(b'"step":15,')) + 1
    assert cut == history.Cut(jsonl=end_of_15, steps=15, events=1, csv_lines=15)


def test_a_failed_row_is_never_kept_in_the_middle_by_a_cut(tmp_path):
    """A save that failed after writing its first file: no checkpoint row, then the run's "failed" row."""
    write_log(tmp_path, [points(1, 12), epoch_end(1, 12), RunFailed("OSError: no space left", "", step=12)])
    cut = history.checkpoint_cut(tmp_path, "never-logged", 12)
    data = (tmp_path / "metrics.jsonl").read_bytes()
    assert cut.jsonl == data.index(b'{"kind":"failed"') and cut.steps == 12 and cut.events == 1
    rows = logrows.read_rows(tmp_path / "metrics.jsonl")
    assert [r["kind"] for r in logrows.rows_up_to_checkpoint(rows, "never-logged", 12)][-1] == "epoch"


# ----------------------------------------------------------------------------- resume cuts the files back


def small_run(digits_config, **train_fields):
    """digits-mlp at 12 steps per epoch, a last.pt every 5 steps, in its own run folder."""
    from ptviz.engine.loop import train

    config = digits_config
    config.data.batch_size = 128
    config.train.epochs = 2
    config.train.log_interval = 1
    config.output.checkpoint_minutes = 0
    config.output.checkpoint_steps = 5
    config.output.tensorboard = False
    for name, value in train_fields.items():
        setattr(config.train, name, value)
    train(config)
    (run,) = Path(config.output.runs_dir).iterdir()
    return config, run


LOG_FILES = ("metrics.jsonl", "metrics.csv", "steps.bin", "events.idx")


def test_resume_truncates_every_log_at_the_checkpoint_byte_for_byte(digits_config):
    """The log after a resume is the log cut at its checkpoint, byte for byte, in the same files (no rewrite)."""
    from ptviz.engine.loop import train
    from ptviz.engine.storage import checkpoint as ckpt

    config, run = small_run(digits_config, max_steps=18)  # epoch 1 ends at 12; periodic at 5, 10, 15; stop at 18
    state = ckpt.load_checkpoint(run / "checkpoints" / "epoch-0001.pt")
    before = {name: (run / name).read_bytes() for name in LOG_FILES}
    inodes = {name: (run / name).stat().st_ino for name in LOG_FILES}
    jsonl = before["metrics.jsonl"]
    cut = jsonl.index(b"\n", jsonl.rindex(state["save_id"].encode())) + 1
    kept_rows = jsonl[:cut].count(b"\n")
    kept_steps = jsonl[:cut].count(b'{"kind":"step"')
    with RunLog(run, resume=state, tensorboard=False):
        pass
    after = {name: (run / name).read_bytes() for name in LOG_FILES}
    assert after["metrics.jsonl"] == jsonl[:cut]
    csv_lines = before["metrics.csv"].splitlines(keepends=True)
    assert after["metrics.csv"] == b"".join(csv_lines[: 1 + kept_steps + 1])  # header, 12 steps, the epoch row
    assert after["steps.bin"] == before["steps.bin"][: steplog.HEADER.size + steplog.STEP_DTYPE.itemsize * kept_steps]
    assert after["events.idx"] == before["events.idx"][: steplog.HEADER.size + steplog.EVENT_DTYPE.itemsize * (kept_rows - kept_steps)]
    assert {name: (run / name).stat().st_ino for name in LOG_FILES} == inodes
    # Training on from there appends after the cut, and the copy still matches the JSONL.
    config.train.max_steps = 20
    train(config, resume=state, run_dir=run)
    final = {name: (run / name).read_bytes() for name in LOG_FILES}
    assert final["metrics.jsonl"].startswith(jsonl[:cut])
    steps, _ = full_rows(run)
    assert [r["step"] for r in steps] == list(range(1, 21))
    assert history.read_steps(run)["loss"].tolist() == [r["loss"] for r in steps]


def test_a_failed_save_leaves_no_failed_row_in_the_middle_after_resume(digits_config, monkeypatch):
    """The epoch's file is written, then naming it last.pt fails and the run fails: its resumed log (from that
    file, whose checkpoint row was never logged) has no "failed" row."""
    import os

    from ptviz.engine.loop import train
    from ptviz.engine.storage import checkpoint as ckpt
    from ptviz.tui.cli import main

    real_replace = os.replace

    def failing(src, dst, *args, **kwargs):
        if str(dst).endswith("last.pt"):
            raise RuntimeError("the storage driver went away")  # not an OSError: the run fails
        return real_replace(src, dst, *args, **kwargs)

    config = digits_config
    config.data.batch_size = 128
    config.train.epochs = 2
    config.output.checkpoint_minutes = 0
    config.output.tensorboard = False
    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(RuntimeError):
        train(config)
    monkeypatch.setattr(os, "replace", real_replace)
    (run,) = Path(config.output.runs_dir).iterdir()
    assert [r["kind"] for r in logrows.read_rows(run / "metrics.jsonl")][-1] == "failed"
    state, path, _ = ckpt.load_newest(run)
    assert path.name == "epoch-0001.pt" and state["step"] == 12
    assert main(["resume", str(run), "--headless"]) == 0
    kinds = [r["kind"] for r in logrows.read_rows(run / "metrics.jsonl")]
    assert "failed" not in kinds and kinds.count("finished") == 1 and kinds[-1] == "finished"
    steps, _ = full_rows(run)
    assert [r["step"] for r in steps] == list(range(1, 25))


def test_resuming_a_run_written_without_the_copy_builds_it(digits_config):
    """A run from before steps.bin existed resumes by truncation too, and gets a copy equal to a fresh one's."""
    from ptviz.engine.storage import checkpoint as ckpt

    _, run = small_run(digits_config, max_steps=18)
    state = ckpt.load_checkpoint(run / "checkpoints" / "epoch-0001.pt")
    before = {name: (run / name).read_bytes() for name in LOG_FILES}
    (run / "steps.bin").unlink()
    (run / "events.idx").unlink()
    with RunLog(run, resume=state, tensorboard=False):
        pass
    kept_steps = (run / "metrics.jsonl").read_bytes().count(b'{"kind":"step"')
    assert kept_steps == 12
    assert (run / "steps.bin").read_bytes() == before["steps.bin"][: steplog.HEADER.size + steplog.STEP_DTYPE.itemsize * kept_steps]
    assert before["events.idx"].startswith((run / "events.idx").read_bytes())


def test_a_copy_cut_shorter_while_it_is_read_never_crashes_the_reader(tmp_path):
    """A reader part-way through a run that a resume truncates gets fewer rows (a memory map would SIGBUS)."""
    import os

    write_log(tmp_path, [points(1, 5000)])
    records = history.LogRecords(tmp_path)
    os.truncate(tmp_path / "steps.bin", steplog.HEADER.size + 100 * steplog.STEP_DTYPE.itemsize)
    steps = np.concatenate(list(records.step_chunks()))
    assert steps["step"].tolist() == list(range(1, 101))


def test_a_full_disk_under_the_copy_leaves_no_partial_record(tmp_path, monkeypatch):
    """A write to steps.bin that fails half-way is cut back and made again later: records stay in line."""
    import errno
    import os

    real_write, failures = os.write, []

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target.endswith("steps.bin") and len(failures) < 1:
            failures.append(real_write(fd, bytes(data)[: len(data) // 2 + 3]))  # part lands, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("finds the file's descriptor through /proc")
    monkeypatch.setattr(os, "write", write)
    errors = []
    log = RunLog(tmp_path, tensorboard=False, on_error=lambda exc, folder: errors.append(exc.errno))
    for first in (1, 11, 21):
        log.emit(points(first, first + 9))
    log.close()
    assert failures and errors == [errno.ENOSPC]
    size = (tmp_path / "steps.bin").stat().st_size
    assert size == steplog.HEADER.size + 30 * steplog.STEP_DTYPE.itemsize
    assert history.read_steps(tmp_path)["step"].tolist() == list(range(1, 31))
