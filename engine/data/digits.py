"""The embedded UCI handwritten digits (1,797 8x8 images), loaded from assets/ with no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ASSET = Path(__file__).resolve().parents[2] / "assets" / "digits.npz"
TEST_SHARE = 0.2
SPLIT_SEED = 20  # fixed: the test set is the same for every run, whatever the training seed


def load_digits_arrays(path: Path = ASSET) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as uint8 (N, 8, 8) with values 0..16, and their labels 0..9."""
    with np.load(path) as archive:
        return archive["images"], archive["labels"].astype(np.int64)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Stretch the 0..16 pixel counts to 0..255 so digits look like any other 8-bit image."""
    return np.round(images.astype(np.float32) * (255.0 / 16.0)).astype(np.uint8)


def split_indices(labels: np.ndarray, test_share: float = TEST_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, fixed train/test split: test_share of every class goes to the test set."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_share))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
