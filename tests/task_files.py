"""Task files the tests write: small, fast, each exercising one part of the contract."""

from __future__ import annotations

import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# Random augmentation from all three generators inside the Dataset, dropout in the model: an exact resume must
# repeat both, with DataLoader workers too.
AUGMENTED = """
import random

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

import ptviz


class Noisy(Dataset):
    def __init__(self, n):
        g = torch.Generator().manual_seed(3)
        self.x = torch.randn(n, 6, generator=g)
        self.y = self.x @ torch.arange(1.0, 7.0)[:, None] / 6

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i] + 0.1 * torch.randn(6) + float(np.random.uniform(-0.05, 0.05))
        if random.random() < 0.5:
            x = x.flip(0)
        return x, self.y[i]


def loss(model, batch):
    x, y = batch
    error = model(x) - y
    return error.pow(2).mean(), {"mae": error.abs().mean()}


def make(config):
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    return ptviz.Task(model=model, train=Noisy(96), test=Noisy(32), loss=loss, kind="regression", name="noisy")
"""

LAZY_CLASSIFIER = """
import torch
from torch import nn
from torch.utils.data import TensorDataset

import ptviz


def make(config=None):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(2))
    return ptviz.Task(model=model, train=TensorDataset(x, y), test=TensorDataset(x[:16], y[:16]),
                      class_names=["neg", "pos"], name="lazy")
"""

ITERABLE = """
import torch
from torch import nn
from torch.utils.data import IterableDataset

import ptviz


class Stream(IterableDataset):
    \"\"\"Samples of epoch e from a generator seeded by e; restorable when `restorable`.\"\"\"

    def __init__(self, n, restorable):
        self.n, self.epoch, self.read, self.restorable = n, 0, 0, restorable
        if restorable:
            self.state_dict = lambda: {"read": self.read}
            self.load_state_dict = lambda s: setattr(self, "skip", s["read"])
        self.skip = 0

    def set_epoch(self, epoch):
        self.epoch, self.read = epoch, 0

    def __len__(self):
        return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(100 + self.epoch)
        xs = torch.randn(self.n, 4, generator=g)
        start, self.skip = self.skip, 0
        for i in range(start, self.n):
            self.read = i + 1
            x = xs[i] + 0.05 * torch.randn(4)
            yield x, x.sum(0, keepdim=True)


def loss(model, batch):
    x, y = batch
    return (model(x) - y).pow(2).mean()


def make(config, restorable=True):
    return ptviz.Task(model=nn.Linear(4, 1), train=Stream(40, restorable), loss=loss, kind="regression",
                      name="stream")


def make_plain(config):
    return make(config, restorable=False)
"""

BROKEN = {
    "raises": """
        import ptviz

        def make(config):
            values = {}
            return values["missing"]  # line 6
        """,
    "non_scalar": """
        import torch
        from torch import nn
        from torch.utils.data import TensorDataset
        import ptviz

        def loss(model, batch):
            x, y = batch
            return (model(x) - y).pow(2)  # no mean: one value per sample

        def make(config):
            x = torch.randn(20, 3)
            return ptviz.Task(model=nn.Linear(3, 1), train=TensorDataset(x, x[:, :1]), loss=loss, kind="regression")
        """,
    "float_metric": """
        import torch
        from torch import nn
        from torch.utils.data import TensorDataset
        import ptviz

        def loss(model, batch):
            x, y = batch
            error = model(x) - y
            return error.pow(2).mean(), {"mae": error.abs().mean().item()}

        def make(config):
            x = torch.randn(20, 3)
            return ptviz.Task(model=nn.Linear(3, 1), train=TensorDataset(x, x[:, :1]), loss=loss, kind="regression")
        """,
    "ragged": """
        import torch
        from torch import nn
        from torch.utils.data import Dataset
        import ptviz

        class Ragged(Dataset):
            def __len__(self):
                return 20

            def __getitem__(self, i):
                return torch.ones(3 + i % 2), torch.zeros(1)

        def loss(model, batch):
            x, y = batch
            return (model(x) - y).pow(2).mean()

        def make(config):
            return ptviz.Task(model=nn.Linear(3, 1), train=Ragged(), loss=loss, kind="regression")
        """,
}


def write_task(folder: Path, name: str, source: str) -> Path:
    """Write a task file and return its path."""
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path
