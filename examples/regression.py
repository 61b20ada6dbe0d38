"""Regression: fit a noisy curve with a small MLP; the loss is MSE and `mae` is charted and logged beside it.

    ptviz-tui --task examples/regression.py:make           # the cockpit, configured by form, flags or TOML
    python examples/regression.py                          # the same through ptviz.fit from this script

The data is made here: y = sin(3x) + x/2 + noise (sd 0.05) for x in [-2, 2], 1,024 training and 256 test points.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

import ptviz

NOISE = 0.05


def curve(x: torch.Tensor) -> torch.Tensor:
    """The function the model learns."""
    return torch.sin(3 * x) + x / 2


def points(n: int, seed: int) -> TensorDataset:
    """`n` noisy samples of the curve, the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g) * 4 - 2
    return TensorDataset(x, curve(x) + NOISE * torch.randn(n, 1, generator=g))


def loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
    """Mean squared error, with the mean absolute error as a named metric (a tensor: no sync)."""
    x, y = batch
    error = model(x) - y
    return error.pow(2).mean(), {"mae": error.abs().mean()}


def make(config=None) -> ptviz.Task:
    """The task; `config` (the run's RunConfig) sets the learning rate of its Adam optimizer."""
    lr = config.optim.lr if config is not None else 0.01
    model = nn.Sequential(nn.Linear(1, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    return ptviz.Task(model=model, train=points(1024, seed=1), test=points(256, seed=2), loss=loss,
                      optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=lr), kind="regression",
                      name="regression")


if __name__ == "__main__":
    ptviz.fit(make(), epochs=10, lr=0.01, batch_size=32)
