"""Checkpoints: the keep/every policy, refusing files that are not checkpoints, and falling back past corrupt ones."""

import importlib.util
import json
import pickle
from pathlib import Path

import pytest
import torch

from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.commands import SaveCheckpoint, Stop
from ptviz.engine.errors import CheckpointError
from ptviz.engine.events import CheckpointSaved, Diverged, EpochEnded, Paused, RunFinished, StepMetrics
from ptviz.engine.storage.logrows import events_of, read_rows
from ptviz.engine.loop import train
from ptviz.engine.session import TrainingSession
from ptviz.engine.sinks import ListSink
from ptviz.tui.cli import main
from ptviz.engine.recipes import recipe


def small(config, epochs=2):
    """digits-mlp in 12 steps per epoch."""
    config.data.batch_size = 128
    config.train.epochs = epochs
    config.output.checkpoint_minutes = 0
    return config


def only_run(config):
    (run,) = Path(config.output.runs_dir).iterdir()
    return run


class Payload:
    """Unpickling this calls open(path, "w"): a file appearing proves the payload ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_numbered_checkpoints_every_n_epochs_keep_the_newest_k(digits_config):
    config = small(digits_config, epochs=6)
    config.output.checkpoint_every, config.output.keep = 2, 2
    sink = ListSink()
    train(config, sink)
    folder = only_run(config) / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "epoch-0004.pt", "epoch-0006.pt", "last.pt"]
    assert ckpt.load_checkpoint(folder / "epoch-0004.pt")["step"] == 48
    assert ckpt.load_checkpoint(folder / "last.pt")["step"] == 72
    saved = [(e.reason, e.step) for e in sink.of(CheckpointSaved)]
    assert saved.count(("epoch", 24)) == 2  # epoch-0002.pt and last.pt, deleted later when 0006 was on disk
    at_end = [(e.reason, Path(e.path).name) for e in sink.of(CheckpointSaved) if e.step == 72]
    assert ("epoch", "epoch-0006.pt") in at_end and [r for r, name in at_end if name == "last.pt"] == ["final"]
    assert all(e.epoch == e.step // 12 for e in sink.of(CheckpointSaved))  # 1-based: the epoch just ended


def test_periodic_checkpoints_every_n_steps_mid_epoch(digits_config):
    config = small(digits_config, epochs=1)
    config.output.checkpoint_steps = 5
    sink = ListSink()
    train(config, sink)
    assert [e.step for e in sink.of(CheckpointSaved) if e.reason == "periodic"] == [5, 10]
    state = ckpt.load_checkpoint(only_run(config) / "checkpoints" / "last.pt")
    assert set(ckpt.REQUIRED) <= set(state) and {"scheduler", "scaler", "save_id"} <= set(state)
    assert set(state["rng"]) >= {"python", "numpy", "torch"}


@pytest.mark.parametrize("as_zip", [True, False], ids=["torch-zip", "raw-pickle"])
def test_pickle_payload_is_refused_and_runs_nothing(tmp_path, as_zip, capsys):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    if as_zip:
        torch.save({"format": ckpt.FORMAT, "model": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"format": ckpt.FORMAT, "model": Payload(marker)}, protocol=2))
    with pytest.raises(CheckpointError, match=r"refused: it names (io|builtins)\.open, code that a checkpoint never") as refused:
        ckpt.load_checkpoint(path)
    assert "weights_only" not in str(refused.value)
    assert not marker.exists()
    # The same file as a run's only checkpoint: `resume` says why and exits 2, still running nothing.
    run = tmp_path / "runs" / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text('recipe = "digits-mlp"\n')
    path.rename(run / "checkpoints" / "last.pt")
    assert main(["resume", str(run), "--headless"]) == 2
    err = capsys.readouterr().err
    assert "no usable checkpoint" in err and "last.pt: refused" in err and "Traceback" not in err
    assert not marker.exists()


def test_files_that_are_not_checkpoints_are_refused_clearly(tmp_path):
    cases = {"empty.pt": b"", "text.pt": b"hello", "other.pt": None}
    for name, data in cases.items():
        if data is None:
            torch.save({"weights": torch.zeros(2)}, tmp_path / name)
        else:
            (tmp_path / name).write_bytes(data)
    with pytest.raises(CheckpointError, match="empty.pt: the file is empty"):
        ckpt.load_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match="text.pt: not a readable checkpoint"):
        ckpt.load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(CheckpointError, match="other.pt: not a ptviz checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.pt")


@pytest.mark.parametrize("damage", ["truncated", "zero-byte"])
def test_corrupt_newest_checkpoint_falls_back_to_the_one_before(digits_config, damage):
    config = small(digits_config, epochs=2)
    config.train.max_steps = 18  # epoch 1 ends at step 12 (epoch-0001, last, best), the run stops at 18 (last)
    train(config)
    run = only_run(config)
    last = run / "checkpoints" / "last.pt"
    assert ckpt.load_newest(run)[0]["step"] == 18
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"")
    state, path, skipped = ckpt.load_newest(run)
    assert state["step"] == 12 and path.name in ("best.pt", "epoch-0001.pt")
    assert len(skipped) == 1 and "last.pt" in skipped[0]
    # Resuming from the fallback trains steps 13.. again and the log keeps one row per step.
    config.train.max_steps = 20
    finished = train(config, resume=state, run_dir=run)
    assert finished.step == 20
    steps = [r["step"] for r in read_rows(run / "metrics.jsonl") if r["kind"] == "step"]
    assert steps == list(range(1, 21))


NAN_MODEL = '''
import torch
from torch import nn


class NaNFromStep(nn.Module):
    """A linear classifier whose training forward pass returns NaN from its {k}th call on."""

    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(64, num_classes)
        self.calls = 0

    def forward(self, x):
        out = self.fc(x.flatten(1))
        if self.training and torch.is_grad_enabled():
            self.calls += 1
            if self.calls >= {k}:
                return out * float("nan")
        return out


def factory(num_classes):
    return NaNFromStep(num_classes)
'''


def test_nan_at_step_k_stops_headless_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    k = 10
    model = tmp_path / "nan_model.py"
    model.write_text(NAN_MODEL.replace("{k}", str(k)))
    runs = tmp_path / "runs"
    code = main(["--headless", "--model", f"{model}:factory", "--runs-dir", str(runs), "--batch-size", "128",
                 "--epochs", "3", "--log-interval", "1", "--checkpoint-steps", "4", "--checkpoint-minutes", "0"])
    assert code == 3
    out = capsys.readouterr().out
    assert f"loss became nan at step {k}; stopping" in out
    (run,) = runs.iterdir()
    assert f"(the last good checkpoint is kept: {run / 'checkpoints' / 'last.pt'})" in out  # named, since it exists
    rows = read_rows(run / "metrics.jsonl")
    assert [r["step"] for r in rows if r["kind"] == "step"] == list(range(1, k + 1))
    assert [r["step"] for r in rows if r["kind"] == "diverged"] == [k]
    assert max(r["step"] for r in rows if r["kind"] == "checkpoint") == 8
    state, path, skipped = ckpt.load_newest(run)
    assert path.name == "last.pt" and state["step"] == 8 and not skipped
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["state"] == "diverged" and summary["step"] == k and summary["diverged_at_step"] == k


async def test_nan_pauses_the_cockpit_session_and_saves_nothing_after(tmp_path, digits_config):
    model = tmp_path / "nan_model.py"
    model.write_text(NAN_MODEL.replace("{k}", "3"))
    config = small(digits_config, epochs=3)
    config.model.name = f"{model}:factory"
    config.train.log_interval = 1
    session = TrainingSession(config)  # a UI session pauses on divergence
    session.start()
    diverged = await session.next_event(Diverged)
    assert (diverged.step, diverged.action, diverged.checkpoint) == (3, "pause", "")  # none saved before step 3
    paused = await session.next_event(Paused)
    assert paused.step == 3
    session.send(SaveCheckpoint())
    session.send(Stop())
    finished = await session.next_event(RunFinished)
    assert finished.state == "diverged" and finished.step == 3
    assert not list((only_run(config) / "checkpoints").glob("*.pt"))
    assert session.stop(timeout=10)


def test_log_rows_match_the_events_one_row_per_step(digits_config):
    """metrics.jsonl read back gives the same steps and epoch results the sink saw."""
    config = small(digits_config, epochs=2)
    sink = ListSink()
    train(config, sink)
    run = only_run(config)
    back = events_of(read_rows(run / "metrics.jsonl"))
    steps = [s for e in back if isinstance(e, StepMetrics) for s in e.steps]
    assert steps == list(range(1, 25))
    assert [e for e in back if isinstance(e, EpochEnded)] == sink.of(EpochEnded)
    header, *lines = (run / "metrics.csv").read_text().splitlines()
    assert header == "epoch,step,lr,train_loss,train_loss_epoch,train_acc_epoch,val_loss,val_acc,test_loss,test_acc"
    assert len(lines) == 24 + 2
    if importlib.util.find_spec("tensorboard"):
        assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    else:  # optional: without the package the run simply has no event files
        assert not (run / "tensorboard").exists()


def test_losses_reach_the_log_on_time_even_with_a_long_log_interval(digits_config, monkeypatch):
    """log_interval 1000 never fills within a 12-step epoch; the once-a-second read still writes rows mid-epoch."""
    import ptviz.engine.loop

    monkeypatch.setattr(ptviz.engine.loop, "READ_SECONDS", 0.0)  # "a second" passes at every step
    monkeypatch.setattr(ptviz.engine.loop, "EMIT_SECONDS", 0.0)
    config = small(digits_config, epochs=1)
    config.train.log_interval = 1000
    sink = ListSink()
    train(config, sink)
    points = sink.of(StepMetrics)
    assert points[0].last_step < 12 and len(points) > 1
    steps = [s for e in events_of(read_rows(only_run(config) / "metrics.jsonl")) if isinstance(e, StepMetrics)
             for s in e.steps]
    assert steps == list(range(1, 13))


def test_a_run_stopped_mid_epoch_numbers_that_epoch_the_same_everywhere(digits_config):
    """Stopped in the 2nd epoch: the finish event, the checkpoint, the log's last rows, summary.json and
    `runs` all say epoch 2 (the status line's numbering), not the 1 epoch completed."""
    from ptviz.engine.storage.runs import run_info

    config = small(digits_config, epochs=3)
    config.train.max_steps = 17  # 5 steps into the 2nd epoch of 12
    sink = ListSink()
    finished = train(config, sink)
    assert finished.stopped and finished.step == 17 and finished.epoch == 2
    (last,) = [e for e in sink.of(CheckpointSaved) if e.step == 17]
    assert last.epoch == 2
    run = only_run(config)
    rows = read_rows(run / "metrics.jsonl")
    assert [r for r in rows if r["kind"] == "step"][-1]["epoch"] == 2
    assert [r for r in rows if r["kind"] == "finished"][-1]["epoch"] == 2
    assert json.loads((run / "summary.json").read_text())["epoch"] == 2
    assert run_info(run).epoch == 2


def test_an_epoch_serializes_its_state_once_and_links_every_name(tmp_path, monkeypatch):
    """Recipe B's epoch (ResNet-18, frozen backbone) writes one checkpoint's worth of bytes for epoch, last
    and best, and the run's final save adds none: the names are one file, and it loads."""
    import shutil

    config = recipe("cifar10-resnet18")
    config.data.dataset, config.data.fake_size, config.data.test_batch_size = "fake", 10, 10
    config.model.pretrained = False
    config.train.epochs = 1
    config.output.runs_dir = str(tmp_path / "runs")
    config.output.checkpoint_minutes = 0
    config.output.tensorboard = False
    written, real_save = [], torch.save

    class Counting:
        """The file torch.save writes to, counting the bytes."""

        def __init__(self, f):
            self.f, self.bytes = f, 0

        def write(self, data):
            self.bytes += len(data)
            return self.f.write(data)

        def flush(self):
            self.f.flush()

    def counting_save(obj, f, *args, **kwargs):
        counted = Counting(f)
        real_save(obj, counted, *args, **kwargs)
        written.append(counted.bytes)

    copies = []
    monkeypatch.setattr(torch, "save", counting_save)
    monkeypatch.setattr(shutil, "copyfile", lambda *a, **k: copies.append(a))
    sink = ListSink()
    train(config, sink)
    folder = only_run(config) / "checkpoints"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["best.pt", "epoch-0001.pt", "last.pt"]
    (size,) = written  # one serialization for the whole run
    assert {(folder / n).stat().st_size for n in names} == {size} and not copies
    assert len({(folder / n).stat().st_ino for n in names}) == 1  # hard links: the bytes are on disk once
    state = ckpt.load_checkpoint(folder / "best.pt")
    assert state["step"] == 1 and set(state["model"]) >= {"fc.weight", "fc.bias"}
    assert [(e.reason, Path(e.path).name) for e in sink.of(CheckpointSaved)] == [
        ("epoch", "epoch-0001.pt"), ("final", "last.pt"), ("best", "best.pt")]  # last.pt told once
    assert len({e.save_id for e in sink.of(CheckpointSaved)}) == 1


def test_replacing_or_pruning_one_name_never_changes_a_linked_one(tmp_path):
    """A newer last.pt and the pruning of old epochs leave best.pt, linked to an older state, as it was."""
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    ckpt.save_once({"state": torch.arange(4)}, [folder / "epoch-0001.pt", folder / "last.pt", folder / "best.pt"])
    best_bytes = (folder / "best.pt").read_bytes()
    ckpt.save_once({"state": torch.arange(8)}, [folder / "epoch-0002.pt", folder / "last.pt"])
    ckpt.prune_numbered(folder, keep=1)
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "epoch-0002.pt", "last.pt"]
    assert (folder / "best.pt").read_bytes() == best_bytes
    assert torch.load(folder / "best.pt", weights_only=True)["state"].tolist() == [0, 1, 2, 3]
    assert torch.load(folder / "last.pt", weights_only=True)["state"].tolist() == list(range(8))
    assert (folder / "last.pt").stat().st_ino == (folder / "epoch-0002.pt").stat().st_ino


def test_names_are_copies_where_the_filesystem_has_no_hard_links(tmp_path, monkeypatch):
    import os

    def no_links(src, dst, *args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    paths = ckpt.save_once({"state": torch.ones(3)}, [tmp_path / "epoch-0001.pt", tmp_path / "last.pt"])
    assert paths[0].read_bytes() == paths[1].read_bytes() and paths[0].stat().st_ino != paths[1].stat().st_ino
    assert not list(tmp_path.glob(".*.tmp"))


def test_hostile_os_system_payload_is_refused_by_name_without_torch_advice(tmp_path):
    """The refusal names the object torch refused and never repeats torch's advice to load with weights_only=False."""
    import os

    class System:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    path = tmp_path / "last.pt"
    torch.save({"format": ckpt.FORMAT, "model": System()}, path)
    with pytest.raises(CheckpointError) as refused:
        ckpt.load_checkpoint(path)
    message = str(refused.value)
    assert f"{path}: refused: it names {os.system.__module__}.system, code that a checkpoint never contains" in message
    assert "weights_only" not in message and "trust" not in message and "\n" not in message
    assert not (tmp_path / "ran").exists()


def record_span(path, name_part):
    """(start, length) of the bytes of the zip record whose name contains `name_part` (stored, uncompressed)."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if name_part in i.filename), key=lambda i: i.file_size)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def test_a_flipped_bit_in_the_tensor_data_is_refused_and_resume_falls_back(digits_config):
    config = small(digits_config, epochs=2)
    config.train.max_steps = 18
    train(config)
    run = only_run(config)
    last = run / "checkpoints" / "last.pt"
    start, length = record_span(last, "/data/")  # the largest tensor: the first layer's weights
    data = bytearray(last.read_bytes())
    data[start + length // 2] ^= 0x04
    last.write_bytes(bytes(data))
    assert torch.load(last, weights_only=True)["step"] == 18  # torch itself reads the damaged file silently
    with pytest.raises(CheckpointError, match=r"last\.pt: damaged: the data of .*/data/\d+ .* does not match the "
                                              r"checksum stored with it"):
        ckpt.load_checkpoint(last)
    state, path, skipped = ckpt.load_newest(run)
    assert state["step"] == 12 and path.name != "last.pt" and "damaged" in skipped[0]


@pytest.mark.parametrize("field, value, why", [
    ("step", -5, "step is -5, not a whole number ≥ 0"),
    ("step", 3.5, "step is 3.5, not a whole number ≥ 0"),
    ("epoch", -1, "epoch is -1, not a whole number ≥ 0"),
    ("batch_in_epoch", 99, "batch_in_epoch 99 is past step 18"),
    ("order", "duplicate", "order is not a permutation of the 1,438 training samples"),
    ("order", "floats", "order is not a list of sample indices"),
])
def test_position_fields_out_of_range_are_refused_and_the_one_before_used(digits_config, field, value, why):
    config = small(digits_config, epochs=2)
    config.train.max_steps = 18
    train(config)
    run = only_run(config)
    last = run / "checkpoints" / "last.pt"
    state = ckpt.load_checkpoint(last)
    if value == "duplicate":
        state["order"][1] = state["order"][0]
    elif value == "floats":
        state["order"] = state["order"].float()
    else:
        state[field] = value
    ckpt.atomic_save(state, last)
    with pytest.raises(CheckpointError, match=f"last.pt: invalid position: {why}"):
        ckpt.load_checkpoint(last)
    assert ckpt.load_newest(run)[0]["step"] == 12


def test_the_newest_checkpoint_is_chosen_by_step_not_by_modification_time(digits_config):
    """A `touch` on an older checkpoint must not make resume cut the log back to it."""
    import os

    config = small(digits_config, epochs=2)
    config.train.max_steps = 18
    train(config)
    run = only_run(config)
    folder = run / "checkpoints"
    future = folder.joinpath("last.pt").stat().st_mtime + 60
    os.utime(folder / "epoch-0001.pt", (future, future))
    state, path, skipped = ckpt.load_newest(run)
    assert (path.name, state["step"], skipped) == ("last.pt", 18, [])
    # Two saves at one step (epoch end, then best): the later save comes first.
    assert [p.name for p in ckpt.stored_checkpoints(folder)][:3] == ["last.pt", "best.pt", "epoch-0001.pt"]


def test_a_temp_file_from_a_save_killed_at_the_first_checkpoint_is_removed_on_resume(digits_config, capsys):
    """Killed during its very first save: `runs` lists the run, `resume` says what to do and removes the leftover."""
    config = small(digits_config, epochs=1)
    config.train.max_steps = 3
    train(config)
    run = only_run(config)
    for pt in (run / "checkpoints").glob("*.pt"):
        pt.unlink()
    leftover = run / "checkpoints" / ".last.pt.4242.tmp"
    leftover.write_bytes(b"PK\x03\x04 half a checkpoint")
    assert main(["runs", str(run.parent)]) == 0
    assert run.name in capsys.readouterr().out
    assert main(["resume", str(run), "--headless"]) == 2
    err = capsys.readouterr().err
    assert "holds no checkpoint: it ended before its first one was saved" in err
    assert f"ptviz-tui --config {run / 'config.toml'}" in err and "Traceback" not in err
    assert not leftover.exists()
