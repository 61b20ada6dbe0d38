"""Data sets load offline from files written in their real formats, and missing data is explained."""

import numpy as np
import pytest
import torch

from ptviz.engine.data import digits, sources
from ptviz.engine.errors import DataUnavailable
from ptviz.engine.loop import train
from ptviz.engine.recipes import recipe
from ptviz.engine.sinks import ListSink
from ptviz.engine.events import EpochEnded


def data_config(dataset, root, **kw):
    config = recipe("digits-mlp")
    config.data.dataset = dataset
    config.data.root = str(root)
    for key, value in kw.items():
        setattr(config.data, key, value)
    return config


def test_embedded_digits_are_the_uci_set():
    images, labels = digits.load_digits_arrays()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and images.max() == 16
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    train_idx, test_idx = digits.split_indices(labels)
    assert len(train_idx) + len(test_idx) == 1797 and not set(train_idx) & set(test_idx)
    bundle = sources.load(recipe("digits-mlp").data)
    assert bundle.shape == (1, 8, 8) and len(bundle.test) == len(test_idx)
    assert bundle.train.images.dtype == torch.uint8 and int(bundle.train.images.max()) == 255


def test_mnist_reads_idx_files(mnist_root):
    bundle = sources.load(data_config("mnist", mnist_root).data)
    assert (len(bundle.train), len(bundle.test), bundle.shape) == (120, 40, (1, 28, 28))
    assert bundle.class_names[0].startswith("0") and bundle.train.labels[:12].tolist() == [*range(10), 0, 1]


def test_mnist_trains_from_idx_files(mnist_root, tmp_path):
    config = data_config("mnist", mnist_root, batch_size=16, test_batch_size=40)
    config.output.runs_dir = str(tmp_path / "runs")
    config.train.epochs = 8
    sink = ListSink()
    train(config, sink)
    assert sink.of(EpochEnded)[-1].test_accuracy >= 0.9


def test_mnist_reads_the_gz_files_a_torchvision_download_leaves(tmp_path, mnist_root):
    """Only train-images-idx3-ubyte.gz and its three siblings: the same images as the extracted files."""
    from conftest import write_mnist

    gz_root = write_mnist(tmp_path / "gz", compress=True)
    assert sorted(p.name for p in (gz_root / "MNIST" / "raw").iterdir())[0] == "t10k-images-idx3-ubyte.gz"
    gz, raw = sources.load(data_config("mnist", gz_root).data), sources.load(data_config("mnist", mnist_root).data)
    assert torch.equal(gz.train.images, raw.train.images) and torch.equal(gz.test.labels, raw.test.labels)
    assert gz.train.images.shape == (120, 1, 28, 28) and gz.class_names == raw.class_names


def test_a_damaged_mnist_file_is_named(mnist_root):
    path = mnist_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(DataUnavailable, match=r"t10k-labels-idx1-ubyte is not a readable mnist IDX file: 37 bytes"):
        sources.load(data_config("mnist", mnist_root).data)


def test_missing_mnist_without_download_says_where_and_how(tmp_path):
    with pytest.raises(DataUnavailable) as info:
        sources.load(data_config("mnist", tmp_path / "nothing").data)
    message = str(info.value)
    assert "data.root" in message and str(tmp_path / "nothing" / "MNIST" / "raw") in message
    assert "--download" in message


def test_cifar10_reads_pickled_batches(cifar_root):
    bundle = sources.load(data_config("cifar10", cifar_root, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)).data)
    assert (len(bundle.train), len(bundle.test), bundle.shape) == (100, 20, (3, 32, 32))
    assert bundle.class_names[:2] == ("airplane", "automobile")
    assert bundle.train.images.dtype == torch.uint8


@pytest.mark.parametrize("keys", ["bytes", "py2"])
def test_cifar10_reads_batches_pickled_with_bytes_keys_or_by_python2(tmp_path, cifar_root, keys):
    """The same images and class names whichever way the dicts were pickled, through the same safe unpickler."""
    from conftest import write_cifar

    other = sources.load(data_config("cifar10", write_cifar(tmp_path / keys, keys), mean=(0.5,) * 3, std=(0.5,) * 3).data)
    plain = sources.load(data_config("cifar10", cifar_root, mean=(0.5,) * 3, std=(0.5,) * 3).data)
    assert torch.equal(other.train.images, plain.train.images) and torch.equal(other.test.labels, plain.test.labels)
    assert other.class_names == plain.class_names and other.class_names[0] == "airplane"


def test_cifar10_refuses_a_batch_that_would_run_code(cifar_root):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(cifar_root / "cifar-10-batches-py" / "data_batch_3", "wb") as fh:
        pickle.dump({"data": Evil(), "labels": []}, fh)
    with pytest.raises(DataUnavailable, match="refusing to load builtins.print"):
        sources.load(data_config("cifar10", cifar_root).data)


def test_imagefolder_reads_pngs_and_resizes(imagefolder_root):
    from ptviz.engine.transform_specs import TransformSpec

    cfg = data_config("imagefolder", imagefolder_root, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                      transforms=[TransformSpec("Resize", {"size": 8})])
    bundle = sources.load(cfg.data)
    assert bundle.class_names == ("blue", "green", "red")
    assert (len(bundle.train), len(bundle.test), bundle.shape) == (18, 6, (3, 8, 8))
    img, label = bundle.train.dataset[0]
    assert label == 0 and img.shape == (3, 8, 8) and int(img[2].float().mean()) == 255


def test_imagefolder_of_mixed_sizes_without_resize_is_explained(imagefolder_root, tmp_path):
    cfg = data_config("imagefolder", imagefolder_root, mean=(0.5,) * 3, std=(0.5,) * 3)
    cfg.output.runs_dir = str(tmp_path / "runs")
    with pytest.raises(DataUnavailable, match="Resize"):
        train(cfg)


def test_fake_data_is_deterministic():
    cfg = data_config("fake", "unused", fake_size=20, mean=(0.5,) * 3, std=(0.5,) * 3).data
    a, b = sources.load(cfg), sources.load(cfg)
    assert torch.equal(a.train.images, b.train.images) and a.shape == (3, 32, 32) and len(a.test) == 10
