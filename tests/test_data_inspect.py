"""The engine's data views: samples through the pipeline, statistics, evaluation views, unreadable files."""

import numpy as np
import pytest
import torch

from ptviz.engine.data import evaluation, samples, sources, stats
from ptviz.engine.data.augment import Pipeline
from ptviz.engine.errors import DataUnavailable
from ptviz.engine.events import Evaluated, RunFailed
from ptviz.engine.loop import train
from ptviz.engine.recipes import recipe
from ptviz.engine.sinks import ListSink
from ptviz.engine.transform_specs import TransformSpec


@pytest.fixture(scope="module")
def digits():
    return sources.load(recipe("digits-mlp").data)


@pytest.mark.parametrize("mean,std", [((0.5,), (0.5,)), ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))])
def test_denormalize_inverts_normalize(mean, std):
    pipeline = Pipeline([], mean, std)
    x = torch.rand(4, len(mean), 8, 8, generator=torch.Generator().manual_seed(0))
    normalised = pipeline.normalize(x)
    assert not torch.allclose(normalised, x)
    assert torch.allclose(pipeline.denormalize(normalised), x, atol=1e-6)


def test_displayed_input_without_augmentation_is_the_raw_image(digits):
    """Normalize then denormalise for display gives back the stored pixels exactly."""
    pipeline = Pipeline([], (0.3,), (0.2,))
    page = samples.draw(digits, pipeline, samples.page_indices(digits.train, 0, 6))
    assert len(page.samples) == 6 and page.raw_dtype == "uint8" and page.input_dtype == "float32"
    for s in page.samples:
        assert s.raw.shape == (8, 8, 1) and np.array_equal(s.train, s.raw) and np.array_equal(s.eval, s.raw)
    assert page.input_range[0] == pytest.approx(-1.5)  # a black pixel is (0 - 0.3) / 0.2


def test_channel_stats_match_numpy_on_digits(digits):
    got = stats.channel_stats(digits.train)
    x = digits.train.images.numpy().astype(np.float64) / 255.0
    assert got.mean[0] == pytest.approx(x.mean(axis=(0, 2, 3))[0], abs=1e-6)
    assert got.std[0] == pytest.approx(x.std(axis=(0, 2, 3))[0], abs=1e-6)
    assert got.images == len(digits.train) and got.pixels_per_channel == len(digits.train) * 64


def test_class_counts_cover_every_image(digits):
    counts = stats.class_counts(digits)
    assert [c.name for c in counts] == ["train", "test"]
    assert sum(c.size for c in counts) == 1797
    assert all(sum(c.per_class) == c.size for c in counts)
    assert counts[1].per_class == tuple(np.bincount(digits.test.labels.numpy(), minlength=10))


def test_reroll_changes_augmented_images_only(digits):
    pipeline = Pipeline([TransformSpec("RandomRotation", {"degrees": 60})], (0.5,), (0.5,))
    indices = samples.page_indices(digits.train, 0, 8)
    a = samples.draw(digits, pipeline, indices, reroll=0)
    b = samples.draw(digits, pipeline, indices, reroll=1)
    again = samples.draw(digits, pipeline, indices, reroll=0)
    assert all(np.array_equal(x.raw, y.raw) and np.array_equal(x.eval, y.eval) for x, y in zip(a.samples, b.samples))
    assert not all(np.array_equal(x.train, y.train) for x, y in zip(a.samples, b.samples))
    assert all(np.array_equal(x.train, y.train) for x, y in zip(a.samples, again.samples))


def test_rgb_samples_and_batch_summary():
    config = recipe("digits-mlp")
    config.data.dataset, config.data.fake_size = "fake", 20
    config.data.mean, config.data.std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    config.data.transforms = [TransformSpec("RandomCrop", {"size": 24, "padding": 0})]
    bundle = sources.load(config.data)
    pipeline = Pipeline(config.data.transforms, config.data.mean, config.data.std)
    page = samples.draw(bundle, pipeline, [0, 1, 2], split="test")
    assert page.raw_shape == (3, 32, 32) and page.input_shape == (3, 24, 24)
    assert page.samples[0].raw.shape == (32, 32, 3) and page.samples[0].train.shape == (24, 24, 3)
    summary = stats.batch_summary(bundle, pipeline, 8, torch.device("cpu"))
    assert summary.shape == (8, 3, 24, 24) and summary.dtype == "float32" and summary.device == "cpu"
    assert -2.0 <= summary.min < summary.mean < summary.max <= 2.0 and summary.labels_shape == (8,)


def test_per_class_accuracy_and_mistakes(digits):
    confusion = ((3, 1), (0, 2))
    event = Evaluated(split="test", step=1, epoch=1, loss=0.1, accuracy=5 / 6, samples=6,
                      confusion=confusion, wrong=((4, 1, 0),))
    rows = evaluation.per_class_accuracy(event, ("zero", "one"))
    assert [(r.name, r.support, r.correct) for r in rows] == [("zero", 4, 3), ("one", 2, 2)]
    assert rows[0].accuracy == 0.75
    pipeline = Pipeline([], (0.5,), (0.5,))
    found, skipped = evaluation.mistakes(event, digits, pipeline)
    assert not skipped and len(found) == 1
    assert (found[0].index, found[0].predicted, found[0].true) == (4, "1", "0")
    assert np.array_equal(found[0].image[..., 0], digits.test.images[4, 0].numpy())


@pytest.fixture
def corrupt_root(imagefolder_root):
    """The image folder with its very first training file replaced by garbage."""
    bad = imagefolder_root / "train" / "blue" / "0.png"
    bad.write_bytes(b"this is not a png")
    return imagefolder_root, bad


def folder_config(root, tmp_path, **kw):
    config = recipe("digits-mlp")
    config.data.dataset, config.data.root = "imagefolder", str(root)
    config.data.mean, config.data.std = (0.5,) * 3, (0.5,) * 3
    config.data.transforms = [TransformSpec("Resize", {"size": 8})]
    config.data.batch_size, config.data.test_batch_size = 4, 6
    config.output.runs_dir = str(tmp_path / "runs")
    config.train.epochs = 1
    for key, value in kw.items():
        setattr(config.data, key, value)
    return config


def test_corrupt_image_is_named_and_the_rest_still_shows(corrupt_root, tmp_path):
    root, bad = corrupt_root
    config = folder_config(root, tmp_path)
    bundle = sources.load(config.data)  # the unreadable first file does not hide the folder
    pipeline = Pipeline(config.data.transforms, config.data.mean, config.data.std)
    page = samples.draw(bundle, pipeline, list(range(len(bundle.train))))
    assert [s.path for s in page.skipped] == [str(bad)] and str(bad) in page.skipped[0].reason
    assert len(page.samples) == len(bundle.train) - 1
    # Folder images are shown at their file size; the pipeline's Resize makes them 8×8.
    assert page.raw_shape == () and page.input_shape == (3, 8, 8)
    found = stats.channel_stats(bundle.train)
    assert [s.path for s in found.skipped] == [str(bad)] and found.images == len(bundle.train) - 1


@pytest.mark.parametrize("workers", [0, 1])
def test_training_on_a_corrupt_image_stops_naming_the_file(corrupt_root, tmp_path, workers, monkeypatch):
    """With data.bad_samples = fail, met while reading (no check up front), in a worker or not: one line."""
    from ptviz.engine.data import bad_samples

    monkeypatch.setattr(bad_samples, "CHECK_LIMIT", 0)
    root, bad = corrupt_root
    sink = ListSink()
    config = folder_config(root, tmp_path, workers=workers)
    config.data.bad_samples = "fail"
    with pytest.raises(DataUnavailable):
        train(config, sink)
    failed = sink.of(RunFailed)[0]
    assert failed.user_error and "\n" not in failed.message
    assert failed.message.startswith(f"{bad} is not a readable image") and "remove or replace" in failed.message


def test_data_view_modules_stay_headless():
    """The new engine modules import without textual, rich or tui."""
    import subprocess
    import sys

    code = ("import sys, ptviz.engine.data.samples, ptviz.engine.data.stats, ptviz.engine.data.evaluation\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich') or m.startswith('ptviz.tui')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
