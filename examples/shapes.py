"""Image classification on an ImageFolder the example writes itself: 16×16 squares, discs and crosses in
random colours, under DATA_ROOT/{train,test}/<shape>/*.png (data.root, "data" by default).

    ptviz-tui --task examples/shapes.py:make --root /tmp/shapes
    python examples/shapes.py /tmp/shapes

A classification task: no loss function (cross-entropy of the model's logits), so the cockpit shows accuracy,
the confusion matrix and the misclassified samples. Training images are flipped and shifted at random inside
the Dataset; ptviz seeds each sample from (seed, epoch, index), so a resumed run sees the same augmentations.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch
from torch import nn
from torchvision import datasets, transforms

import ptviz

SHAPES = ("cross", "disc", "square")
SIZE = 16


def draw(shape: str, rng: random.Random):
    """One RGB image of `shape` in a random colour at a random place, on a dark background."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), tuple(rng.randrange(0, 60) for _ in range(3)))
    pen = ImageDraw.Draw(image)
    colour = tuple(rng.randrange(120, 256) for _ in range(3))
    r = rng.randrange(4, 7)
    cx, cy = rng.randrange(r + 1, SIZE - r - 1), rng.randrange(r + 1, SIZE - r - 1)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "square":
        pen.rectangle(box, fill=colour)
    elif shape == "disc":
        pen.ellipse(box, fill=colour)
    else:
        pen.line((cx - r, cy, cx + r, cy), fill=colour, width=2)
        pen.line((cx, cy - r, cx, cy + r), fill=colour, width=2)
    return image


def write_images(root: Path, per_class: int = 80, seed: int = 0) -> None:
    """Write the folder once (a marker file says it is complete)."""
    done = root / ".complete"
    if done.exists():
        return
    rng = random.Random(seed)
    for split, count in (("train", per_class), ("test", per_class // 4)):
        for shape in SHAPES:
            folder = root / split / shape
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw(shape, rng).save(folder / f"{i:03d}.png")
    done.write_text("ok\n")


def make(config=None) -> ptviz.Task:
    """The task over config.data.root, written there first if need be."""
    root = Path(config.data.root if config is not None else "data") / "ptviz-shapes"
    write_images(root)
    augment = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.RandomAffine(0, translate=(0.1, 0.1)),
                                  transforms.ToTensor()])
    train = datasets.ImageFolder(str(root / "train"), transform=augment)
    test = datasets.ImageFolder(str(root / "test"), transform=transforms.ToTensor())
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.LazyLinear(len(train.classes)),  # the input size is found from one real batch
    )
    lr = config.optim.lr if config is not None else 0.05
    return ptviz.Task(model=model, train=train, test=test, class_names=train.classes, name="shapes",
                      optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9))


if __name__ == "__main__":
    ptviz.fit(make(), root=sys.argv[1] if len(sys.argv) > 1 else "data", epochs=8, lr=0.05, batch_size=32)
