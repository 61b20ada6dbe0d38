"""What a data set's model inputs look like, known without reading its files (for previews)."""

from __future__ import annotations

from pathlib import Path

from ..config import DataConfig

KNOWN = {
    "digits": ((1, 8, 8), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion-mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "fake": ((3, 32, 32), 10),
}
SIZING = ("Resize", "CenterCrop", "RandomCrop")


def stored_shape_and_classes(cfg: DataConfig) -> tuple[tuple[int, int, int], int]:
    """(C, H, W) of stored images and the class count; imagefolder is read from its folder names."""
    if cfg.dataset in KNOWN:
        return KNOWN[cfg.dataset]
    channels = len(cfg.mean) if len(cfg.mean) in (1, 3) else 3
    size = next((int(s.resolved()["size"]) for s in cfg.transforms if s.name in SIZING), 224)
    root = Path(cfg.root)
    folder = root / "train" if (root / "train").is_dir() else root
    try:
        classes = sum(1 for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        classes = 0
    return (channels, size, size), classes or 10


def model_input(cfg: DataConfig, num_classes: int = 0) -> tuple[tuple[int, int, int], int]:
    """(C, H, W) after the eval pipeline and the class count a model for `cfg` needs."""
    from .augment import Pipeline

    shape, classes = stored_shape_and_classes(cfg)
    out = Pipeline(cfg.transforms, cfg.mean, cfg.std).output_shape(shape)
    return out, num_classes or classes
