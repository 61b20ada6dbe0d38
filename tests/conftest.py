"""Shared fixtures: small, fast configurations and data files written in their real formats."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

import ptviz.tui.data.tab  # noqa: F401 - loaded, so a test's cockpit composes its Data and Model tabs at once
import ptviz.tui.model.tab  # noqa: F401 - (a user's cockpit loads them after its first screen: test_startup.py)
from ptviz.engine.commands import Control
from ptviz.engine.recipes import recipe

# Tests never talk to a real terminal: draw images with Unicode half-cells, the same everywhere.
os.environ["PTVIZ_IMAGES"] = "halfcell"
# The models here are tiny; on a loaded 2-core machine torch's intra-op threads mostly wait on each other.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

# Every run's control, so a test that fails before stopping its run does not leave a training thread
# computing while the interpreter shuts down (torch then aborts the whole test process).
_controls: weakref.WeakSet[Control] = weakref.WeakSet()
_control_init = Control.__init__


def _tracked_init(self, *args, **kwargs):
    _control_init(self, *args, **kwargs)
    _controls.add(self)


Control.__init__ = _tracked_init


@pytest.fixture(autouse=True)
def _stop_leftover_runs():
    """After each test, stop and join any training thread it left running."""
    yield
    leftover = [t for t in threading.enumerate() if t.name == "ptviz-train" and t.is_alive()]
    if leftover:
        for control in list(_controls):
            control.stop()
        for thread in leftover:
            thread.join(30)


@pytest.fixture
def one_torch_thread():
    """One intra-op thread for the test: tiny models gain nothing from more, bit-for-bit comparisons want one,
    and on a shared CPU the threads' barriers stall for whole time slices."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def digits_config(tmp_path):
    """The default recipe, writing its run directory under a temporary folder."""
    config = recipe("digits-mlp")
    config.output.runs_dir = str(tmp_path / "runs")
    return config


def write_idx_images(path: Path, images: np.ndarray, compress: bool = False) -> None:
    """Write uint8 images (N, H, W) as an IDX3 file, as the MNIST distribution does."""
    n, h, w = images.shape
    payload = struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def write_idx_labels(path: Path, labels: np.ndarray, compress: bool = False) -> None:
    """Write uint8 labels as an IDX1 file."""
    payload = struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def write_mnist(root: Path, compress: bool = False) -> Path:
    """A small MNIST in torchvision's raw layout (root/MNIST/raw/*-ubyte, or only the .gz files a download leaves)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", 120), ("t10k", 40)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 50, size=(n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):  # a bright bar whose row encodes the class: learnable
            images[i, 2 + 2 * label: 4 + 2 * label, 4:24] = 255
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    return root


@pytest.fixture
def mnist_root(tmp_path):
    """A data root holding a small MNIST in torchvision's raw layout (root/MNIST/raw/*-ubyte)."""
    return write_mnist(tmp_path / "data")


class Py2Pickler(pickle._Pickler):
    """Pickles the way Python 2's cPickle wrote the real CIFAR files: str as byte strings, numpy.core globals."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_string(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_string
    dispatch[bytes] = save_py2_string

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")  # numpy 1's module names
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def write_cifar(root: Path, keys: str = "str") -> Path:
    """Small CIFAR-10 python batches in root/cifar-10-batches-py; keys: "str" (Python 3 pickle), "bytes"
    (a Python 3 pickle of bytes keys and names) or "py2" (Python 2 byte strings, as the real files)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    key = (lambda k: k.encode()) if keys == "bytes" else (lambda k: k)

    def dump(obj, path):
        with open(path, "wb") as fh:
            if keys == "py2":
                Py2Pickler(fh, protocol=2).dump(obj)
            else:
                pickle.dump(obj, fh, protocol=2 if keys == "str" else 4)

    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for i, name in enumerate(names):
        labels = [int(v) for v in rng.integers(0, 10, size=20)]
        dump({key("batch_label"): key(f"batch {i}"), key("labels"): labels,
              key("data"): rng.integers(0, 256, size=(20, 3072), dtype=np.uint8),
              key("filenames"): [key(f"img_{i}_{j}.png") for j in range(20)]}, folder / name)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    dump({key("num_cases_per_batch"): 20, key("label_names"): [key(c) for c in classes], key("num_vis"): 3072},
         folder / "batches.meta")
    return root


@pytest.fixture
def cifar_root(tmp_path):
    """A data root holding small CIFAR-10 python batches pickled the way the real files are."""
    return write_cifar(tmp_path / "data")


@pytest.fixture
def imagefolder_root(tmp_path):
    """root/train/<class>/*.png and root/test/<class>/*.png with three colour classes."""
    from PIL import Image

    root = tmp_path / "images"
    colours = {"blue": (0, 0, 255), "green": (0, 255, 0), "red": (255, 0, 0)}
    for split, n in (("train", 6), ("test", 2)):
        for name, rgb in colours.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                img = Image.new("RGB", (12 + i, 10 + i), rgb)
                img.save(folder / f"{i}.png")
    return root
