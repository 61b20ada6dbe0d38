"""The tutorial's MNISTNet: a three-layer perceptron whose input size follows the data."""

from __future__ import annotations

import math

import torch
from torch import nn


class MNISTNet(nn.Module):
    """Flatten -> Linear(in, 512) -> ReLU -> Linear(512, 256) -> ReLU -> Linear(256, classes).

    The ReLUs are modules (the tutorial calls torch.relu): the same computation and weights, and the Model tab
    can show each one's dead units.
    """

    def __init__(self, in_features: int = 28 * 28, num_classes: int = 10):
        super().__init__()
        self.in_features = in_features
        self.fc1 = nn.Linear(in_features, 512)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(512, 256)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(256, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, self.in_features)
        x = self.relu1(self.fc1(x))
        x = self.relu2(self.fc2(x))
        return self.fc3(x)


def build(input_shape: tuple[int, int, int], num_classes: int) -> MNISTNet:
    """An MNISTNet sized for images of `input_shape` (C, H, W)."""
    return MNISTNet(math.prod(input_shape), num_classes)
