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


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """Write uint8 labels as an IDX1 file."""
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_root(tmp_path):
    """A data root holding a small MNIST in torchvision's raw layout (root/MNIST/raw/*-ubyte)."""
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 40)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 50, size=(n, 28, 28), dtype=np.uint8)
        for i, label in enumerate(labels):  # a bright bar whose row encodes the class: learnable
            images[i, 2 + 2 * label: 4 + 2 * label, 4:24] = 255
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return tmp_path / "data"


@pytest.fixture
def cifar_root(tmp_path):
    """A data root holding small CIFAR-10 python batches pickled the way the real files are."""
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for i, name in enumerate(names):
        labels = [int(v) for v in rng.integers(0, 10, size=20)]
        batch = {"batch_label": f"batch {i}", "labels": labels,
                 "data": rng.integers(0, 256, size=(20, 3072), dtype=np.uint8),
                 "filenames": [f"img_{i}_{j}.png" for j in range(20)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)
    meta = {"num_cases_per_batch": 20, "label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                                       "frog", "horse", "ship", "truck"], "num_vis": 3072}
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump(meta, fh, protocol=2)
    return tmp_path / "data"


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
