"""Unreadable image files: skipped and named (or failing the run), deterministically, with workers and resume."""

import pytest
import torch
from PIL import Image

from ptviz.engine.commands import Control
from ptviz.engine.data import bad_samples
from ptviz.engine.errors import DataUnavailable
from ptviz.engine.events import Notice, RunFailed, RunFinished, StepMetrics
from ptviz.engine.loop import Trainer, train
from ptviz.engine.recipes import recipe
from ptviz.engine.setup import build
from ptviz.engine.sinks import ListSink

COLOURS = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}


@pytest.fixture
def folder(tmp_path):
    """root/train/<colour>/0..7.png and root/test/<colour>/0..1.png (8x8), with two files that are not images."""
    root = tmp_path / "images"
    for split, n in (("train", 8), ("test", 2)):
        for name, rgb in COLOURS.items():
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), tuple(max(0, c - 20 * i) for c in rgb)).save(root / split / name / f"{i}.png")
    (root / "train" / "green" / "3.png").write_bytes(b"not an image at all")
    (root / "test" / "blue" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")  # the test split's first image
    return root


def folder_config(root, **data):
    """24 training images in batches of 5 (5 steps an epoch), 2 epochs, nothing written."""
    config = recipe("digits-mlp")
    config.data.dataset = "imagefolder"
    config.data.root = str(root)
    config.data.mean, config.data.std = (0.5,) * 3, (0.5,) * 3
    config.data.batch_size, config.data.test_batch_size = 5, 4
    for key, value in data.items():
        setattr(config.data, key, value)
    config.train.epochs = 2
    config.train.log_interval = 1
    config.output.runs_dir = ""
    return config


def losses(sink):
    return [loss for event in sink.of(StepMetrics) for loss in event.losses]


def unreadable_notices(sink):
    return [n.text for n in sink.of(Notice) if "unreadable" in n.text]


def test_unreadable_files_met_while_training_are_skipped_named_once_and_the_run_finishes(folder, monkeypatch):
    """Found only when read (no check up front), in DataLoader workers: each file is named once over two epochs."""
    monkeypatch.setattr(bad_samples, "CHECK_LIMIT", 0)
    sink = ListSink()
    finished = train(folder_config(folder, workers=2), sink)
    assert (finished.step, finished.state) == (10, "finished")
    train_file, test_file = folder / "train" / "green" / "3.png", folder / "test" / "blue" / "0.png"
    notices = unreadable_notices(sink)
    assert len(notices) == 2 and all(n.level == "warning" for n in sink.of(Notice))
    assert {n.split(": ", 1)[1].split(" is not")[0] for n in notices} == {str(train_file), str(test_file)}
    assert notices[0].startswith("unreadable image 1 skipped: ") and notices[1].startswith("unreadable image 2 ")
    assert not sink.of(RunFailed)


def test_skipping_is_deterministic_whether_found_up_front_or_while_reading(folder, monkeypatch):
    """Same losses with workers or without, checked up front or not: a file is replaced by the next readable one."""
    sink = ListSink()
    train(folder_config(folder), sink)
    notices = unreadable_notices(sink)
    assert notices[0] == ("2 unreadable image file(s) found up front; each is replaced by the next readable "
                          "image of its split (data.bad_samples = skip)")
    assert len(notices) == 3  # and each file once, not again when a batch meets it
    assert sink.events.index(sink.of(Notice)[0]) == 1  # right after RunStarted, before any step
    monkeypatch.setattr(bad_samples, "CHECK_LIMIT", 0)
    late = ListSink()
    train(folder_config(folder, workers=2), late)
    assert losses(sink) == losses(late) and len(losses(sink)) == 10


def test_a_run_that_skipped_files_resumes_exactly(folder, monkeypatch):
    """Stopped at step 7 and restored, it ends with the weights of the run that never stopped."""
    monkeypatch.setattr(bad_samples, "CHECK_LIMIT", 0)
    whole = Trainer(build(folder_config(folder)), ListSink(), Control())
    whole.run()
    first_config = folder_config(folder)
    first_config.train.max_steps = 7
    first = Trainer(build(first_config), ListSink(), Control())
    first.run()
    resumed = Trainer(build(folder_config(folder)), ListSink(), Control())
    resumed.restore(first.state("test"))
    resumed.run()
    assert resumed.step == whole.step == 10
    final, expected = resumed.s.model.state_dict(), whole.s.model.state_dict()
    assert all(torch.equal(final[k], expected[k]) for k in expected)


def test_bad_samples_fail_stops_the_run_naming_the_file(folder, monkeypatch):
    """Up front: before anything trains. While reading: a user error naming the file, no traceback."""
    with pytest.raises(DataUnavailable) as info:
        train(folder_config(folder, bad_samples="fail"))
    assert str(info.value).startswith("data.bad_samples is fail and 2 image(s) are unreadable: ")
    assert str(folder / "train" / "green" / "3.png") in str(info.value)
    monkeypatch.setattr(bad_samples, "CHECK_LIMIT", 0)
    sink = ListSink()
    with pytest.raises(DataUnavailable):
        train(folder_config(folder, bad_samples="fail", workers=2), sink)
    (failed,) = sink.of(RunFailed)
    assert failed.user_error and failed.traceback == "" and not sink.of(RunFinished)
    assert failed.message.startswith(str(folder)) and "is not a readable image" in failed.message


def test_replacement_is_the_next_readable_sample_of_the_split_wrapping_around():
    """Indices 3, 4 and 5 unreadable: each is replaced by 0, wrapping around; a split of only bad files is explained."""
    from ptviz.engine.errors import UnreadableImage

    class Files(torch.utils.data.Dataset):
        def __init__(self, bad):
            self.bad = bad

        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i in self.bad:
                raise UnreadableImage(f"f{i} is not a readable image", f"f{i}")
            return torch.full((1, 2, 2), i), i

    data = bad_samples.Substituting(Files({3, 4, 5}), "train", skip=True)
    image, label, notes = data[3]
    assert (int(image[0, 0, 0]), label, [path for path, _ in notes]) == (0, 0, ["f3", "f4", "f5"])
    assert data[2][1:] == (2, ())
    with pytest.raises(UnreadableImage):
        bad_samples.Substituting(Files({3}), "train", skip=False)[3]
    with pytest.raises(DataUnavailable, match="no image of the test split is readable"):
        bad_samples.Substituting(Files(set(range(6))), "test", skip=True)[0]
