"""Load a data set's train and test splits as uint8 CxHxW images with integer labels.

Every data set ends up in the same shape so one batched pipeline (engine.data.augment) serves all:
in-memory sets as one uint8 tensor, folder sets as a Dataset decoded per sample.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import DataConfig
from ..errors import DataUnavailable, UnreadableImage
from ..transform_specs import TransformSpec
from . import digits, idx
from .bad_samples import check_files

IMAGEFOLDER_TEST_SHARE = 0.2


@dataclass
class Split:
    """One split: labels always in memory; images as a uint8 tensor or a per-sample Dataset."""

    name: str
    labels: torch.Tensor  # (N,) int64
    images: torch.Tensor | None = None  # (N, C, H, W) uint8 when the split is in memory
    dataset: Dataset | None = None  # yields (uint8 CxHxW tensor, int) when it is not

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def image(self, index: int) -> torch.Tensor:
        """One uint8 CxHxW image."""
        if self.images is not None:
            return self.images[index]
        return self.dataset[index][0]  # type: ignore[index]

    def subset(self, name: str, indices: torch.Tensor) -> Split:
        """The split restricted to `indices`."""
        if self.images is not None:
            return Split(name, self.labels[indices], images=self.images[indices])
        return Split(name, self.labels[indices],
                     dataset=torch.utils.data.Subset(self.dataset, indices.tolist()))  # type: ignore[arg-type]


@dataclass
class DataBundle:
    """Train, optional validation and test splits plus what describes them."""

    train: Split
    val: Split | None
    test: Split
    class_names: tuple[str, ...]
    shape: tuple[int, int, int]  # C, H, W of the stored images
    source: str  # where the files came from, for the user
    unreadable: dict[str, str] = field(default_factory=dict)  # files found unreadable up front: path -> why

    @property
    def resident(self) -> bool:
        """Whether every split is held as one tensor."""
        return self.train.images is not None and self.test.images is not None


def load(cfg: DataConfig, seed: int = 0) -> DataBundle:
    """Build the splits `cfg` asks for; DataUnavailable says what is missing and how to get it."""
    loaders = {
        "digits": _digits,
        "mnist": _mnist,
        "fashion-mnist": _mnist,
        "cifar10": _cifar10,
        "imagefolder": _imagefolder,
        "fake": _fake,
    }
    bundle = loaders[cfg.dataset](cfg)
    if cfg.val_split > 0:
        bundle = _hold_out(bundle, cfg.val_split, seed)
    return bundle


def _hold_out(bundle: DataBundle, share: float, seed: int) -> DataBundle:
    n = len(bundle.train)
    n_val = max(1, int(round(n * share)))
    if n_val >= n:
        raise DataUnavailable(f"data.val_split {share} leaves no training images out of {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val = bundle.train.subset("val", order[:n_val].sort().values)
    train = bundle.train.subset("train", order[n_val:].sort().values)
    return replace(bundle, train=train, val=val)


# ----------------------------------------------------------------------------- embedded digits


def _digits(cfg: DataConfig) -> DataBundle:
    images, labels = digits.load_digits_arrays()
    train_idx, test_idx = digits.split_indices(labels)
    x = torch.from_numpy(digits.to_uint8(images)).unsqueeze(1)  # N,1,8,8
    y = torch.from_numpy(labels)
    return DataBundle(
        train=Split("train", y[train_idx], images=x[train_idx]),
        val=None,
        test=Split("test", y[test_idx], images=x[test_idx]),
        class_names=tuple(str(i) for i in range(10)),
        shape=(1, 8, 8),
        source=f"embedded UCI digits ({digits.ASSET.name})",
    )


# ----------------------------------------------------------------------------- torchvision sets


MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _mnist(cfg: DataConfig) -> DataBundle:
    from torchvision import datasets

    cls = datasets.MNIST if cfg.dataset == "mnist" else datasets.FashionMNIST
    folder = Path(cfg.root) / cls.__name__ / "raw"
    names = [name for pair in MNIST_FILES.values() for name in pair]
    listed = ", ".join(names) + " (each as it is or .gz)"
    if cfg.download and any(idx.find(folder, name) is None for name in names):
        try:
            cls(cfg.root, train=True, download=True)  # torchvision's downloader fetches all four files
        except Exception as exc:  # noqa: BLE001 - any network/IO failure becomes one message
            raise _unavailable(cfg, folder, listed, exc) from None
    if any(idx.find(folder, name) is None for name in names):
        raise _unavailable(cfg, folder, listed, RuntimeError("missing"))
    splits = {}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images, labels = (_read_idx(idx.find(folder, name), cfg.dataset)  # type: ignore[arg-type]
                          for name in (images_name, labels_name))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataUnavailable(f"{cfg.dataset} files in {folder} do not match: {images_name} holds an array of "
                                  f"shape {images.shape}, {labels_name} one of shape {labels.shape}")
        splits[split] = Split(split, torch.from_numpy(labels.astype(np.int64)),
                              images=torch.from_numpy(images).unsqueeze(1))
    return DataBundle(
        train=splits["train"],
        val=None,
        test=splits["test"],
        class_names=tuple(cls.classes),
        shape=(1, *splits["train"].images.shape[2:]),  # type: ignore[union-attr]
        source=str(folder),
    )


def _read_idx(path: Path, dataset: str) -> np.ndarray:
    try:
        return idx.read(path)
    except (OSError, ValueError) as exc:
        raise DataUnavailable(f"{path} is not a readable {dataset} IDX file: {exc}") from None


def _unavailable(cfg: DataConfig, folder: Path, files: str, exc: Exception) -> DataUnavailable:
    if cfg.download:
        return DataUnavailable(f"{cfg.dataset}: download into {cfg.root} failed ({exc}); "
                               f"check the network or place the files ({files}) in {folder}")
    return DataUnavailable(
        f"data.root: {cfg.dataset} files not found in {folder} (looked for {files}); "
        f"allow downloading with --download (data.download = true) or copy the files there"
    )


class _SafeUnpickler(pickle.Unpickler):
    """Reads the CIFAR python batches, which hold only dicts, lists, bytes and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _read_cifar_batch(path: Path) -> dict:
    """A CIFAR python batch with str keys, whether it was pickled with str keys or bytes keys."""
    with open(path, "rb") as fh:
        entry = _SafeUnpickler(fh, encoding="latin1").load()
    if not isinstance(entry, dict):
        raise TypeError(f"it holds a {type(entry).__name__}, not a dict")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in entry.items()}


def _cifar10(cfg: DataConfig) -> DataBundle:
    from torchvision.datasets import CIFAR10

    folder = Path(cfg.root) / CIFAR10.base_folder
    names = [n for n, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]
    if cfg.download and not all((folder / n).exists() for n in names):
        try:
            # torchvision's own downloader (checks the archive's md5 and extracts it).
            CIFAR10(cfg.root, train=True, download=True)
        except Exception as exc:  # noqa: BLE001 - any network/IO failure becomes one message
            raise _unavailable(cfg, folder, ", ".join(names), exc) from None
    missing = [n for n in names if not (folder / n).exists()]
    if missing:
        raise _unavailable(cfg, folder, ", ".join(missing), RuntimeError("missing"))

    def read(files: list[tuple[str, str]]) -> tuple[np.ndarray, list[int]]:
        data, labels = [], []
        for name, _md5 in files:
            try:
                entry = _read_cifar_batch(folder / name)
                data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
            except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as exc:
                raise DataUnavailable(f"{folder / name} is not a CIFAR-10 batch file: {exc}") from None
        return np.concatenate(data), labels

    x_train, y_train = read(CIFAR10.train_list)
    x_test, y_test = read(CIFAR10.test_list)
    try:
        classes = tuple(name.decode("latin1") if isinstance(name, bytes) else str(name)
                        for name in _read_cifar_batch(folder / CIFAR10.meta["filename"])[CIFAR10.meta["key"]])
    except (pickle.UnpicklingError, KeyError, EOFError, TypeError) as exc:
        raise DataUnavailable(f"{folder / CIFAR10.meta['filename']} is not CIFAR-10 metadata: {exc}") from None
    return DataBundle(
        train=Split("train", torch.tensor(y_train, dtype=torch.long), images=torch.from_numpy(x_train)),
        val=None,
        test=Split("test", torch.tensor(y_test, dtype=torch.long), images=torch.from_numpy(x_test)),
        class_names=classes,
        shape=(3, 32, 32),
        source=str(folder),
    )


# ----------------------------------------------------------------------------- fake


def _fake(cfg: DataConfig) -> DataBundle:
    from torchvision.datasets import FakeData
    from torchvision.transforms.v2.functional import pil_to_tensor

    shape = (3, 32, 32)

    def make(n: int, offset: int) -> Split:
        fake = FakeData(size=n, image_size=shape, num_classes=10, random_offset=offset)
        pairs = [fake[i] for i in range(n)]
        images = torch.stack([pil_to_tensor(img) for img, _ in pairs])
        labels = torch.tensor([int(label) for _, label in pairs], dtype=torch.long)
        return Split("train" if offset == 0 else "test", labels, images=images)

    return DataBundle(
        train=make(cfg.fake_size, 0),
        val=None,
        test=make(max(10, cfg.fake_size // 5), 1_000_003),
        class_names=tuple(f"class {i}" for i in range(10)),
        shape=shape,
        source="torchvision FakeData (random images)",
    )


# ----------------------------------------------------------------------------- image folders


class FolderImages(Dataset):
    """Images under class sub-folders, decoded to uint8 CxHxW and sized by the leading Resize/CenterCrop."""

    def __init__(self, samples: list[tuple[str, int]], channels: int, sizing: list[TransformSpec],
                 unreadable: dict[str, str] | None = None):
        self.samples = samples
        self.channels = channels
        self.sizing = sizing
        self.unreadable = unreadable or {}  # found up front: never decoded again

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        if path in self.unreadable:
            raise UnreadableImage(self.unreadable[path], path)
        return decode_image(path, self.channels, self.sizing), label


def decode_image(path: str, channels: int, sizing: list[TransformSpec]) -> torch.Tensor:
    """Read one image file as uint8 CxHxW; DataUnavailable names the file when it is unreadable."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.v2 import functional as F

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            tensor = F.pil_to_tensor(img)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # PIL's own message repeats the path; say what is wrong instead.
        why = "unknown or damaged image data" if isinstance(exc, UnidentifiedImageError) else str(exc)
        raise UnreadableImage(f"{path} is not a readable image ({why}); remove or replace that file",
                              path) from None
    for spec in sizing:
        size = int(spec.resolved()["size"])
        if spec.name == "Resize":
            tensor = F.resize(tensor, [size, size], antialias=True)
        elif spec.name == "CenterCrop":
            tensor = F.center_crop(tensor, [size, size])
    return tensor


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def _scan(folder: Path) -> tuple[list[str], list[tuple[str, int]]]:
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    samples = []
    for i, name in enumerate(classes):
        for dirpath, _dirs, files in sorted(os.walk(folder / name)):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    samples.append((os.path.join(dirpath, f), i))
    return classes, samples


def leading_sizing(specs: list[TransformSpec]) -> list[TransformSpec]:
    """The Resize/CenterCrop steps at the start of a pipeline (applied per image, before batching)."""
    out = []
    for spec in specs:
        if spec.name not in ("Resize", "CenterCrop"):
            break
        out.append(spec)
    return out


def _first_readable(samples: list[tuple[str, int]], channels: int, sizing: list[TransformSpec]) -> torch.Tensor:
    # One unreadable file should not hide the whole folder: the data pane lists it and shows the rest.
    first_error = None
    for path, _label in samples:
        try:
            return decode_image(path, channels, sizing)
        except UnreadableImage as exc:
            first_error = first_error or exc
    raise first_error  # type: ignore[misc]


def readable_items(split: Split, count: int) -> list[tuple[torch.Tensor, int]]:
    """The first `count` images of `split` that decode, each with label 0 (a sample batch for checks)."""
    items: list[tuple[torch.Tensor, int]] = []
    first_error: UnreadableImage | None = None
    for index in range(len(split)):
        try:
            items.append((split.image(index), 0))
        except UnreadableImage as exc:
            first_error = first_error or exc
            continue
        if len(items) == count:
            break
    if not items and first_error is not None:
        raise first_error
    return items


def sample_path(split: Split, index: int) -> str | None:
    """The file behind sample `index` of a folder split, or None for in-memory splits."""
    dataset, i = split.dataset, index
    while isinstance(dataset, torch.utils.data.Subset):
        dataset, i = dataset.dataset, dataset.indices[i]
    return dataset.samples[i][0] if isinstance(dataset, FolderImages) else None


def _imagefolder(cfg: DataConfig) -> DataBundle:
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataUnavailable(f"data.root: {root} is not a folder; imagefolder needs class sub-folders "
                              f"(root/cat/1.png, root/dog/2.png) or root/train and root/test")
    train_dir, test_dir = root / "train", next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    split_here = not (train_dir.is_dir() and test_dir is not None)
    classes, samples = _scan(root if split_here else train_dir)
    if not classes or not samples:
        raise DataUnavailable(f"data.root: no images found under {root}; imagefolder needs class sub-folders "
                              f"holding {', '.join(IMAGE_EXTENSIONS[:4])} files")
    channels = len(cfg.mean) if len(cfg.mean) in (1, 3) else 3
    sizing = leading_sizing(cfg.transforms)
    test_samples: list[tuple[str, int]] = []
    if not split_here:
        test_classes, test_samples = _scan(test_dir)  # type: ignore[arg-type]
        if test_classes != classes:
            raise DataUnavailable(f"data.root: class folders differ between {train_dir} ({', '.join(classes)}) "
                                  f"and {test_dir} ({', '.join(test_classes)})")
    unreadable = check_files([path for path, _ in samples + test_samples])
    first = _first_readable([s for s in samples if s[0] not in unreadable] or samples, channels, sizing)
    labels = torch.tensor([label for _, label in samples], dtype=torch.long)
    if split_here:
        order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(digits.SPLIT_SEED))
        n_test = max(1, int(len(samples) * IMAGEFOLDER_TEST_SHARE))
        test_idx, train_idx = order[:n_test].sort().values, order[n_test:].sort().values
        full = Split("train", labels, dataset=FolderImages(samples, channels, sizing, unreadable))
        train, test = full.subset("train", train_idx), full.subset("test", test_idx)
    else:
        train = Split("train", labels, dataset=FolderImages(samples, channels, sizing, unreadable))
        test = Split("test", torch.tensor([lab for _, lab in test_samples], dtype=torch.long),
                     dataset=FolderImages(test_samples, channels, sizing, unreadable))
    return DataBundle(train, None, test, tuple(classes), tuple(first.shape), str(root),  # type: ignore[arg-type]
                      unreadable=unreadable)
