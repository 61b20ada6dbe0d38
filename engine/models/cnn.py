"""A small convolutional network for any channel count and image size."""

from __future__ import annotations

from torch import nn


class SmallCNN(nn.Sequential):
    """Two conv-BN-ReLU blocks with pooling, global average pooling and a linear head named fc."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(2 * width, num_classes)


def build(input_shape: tuple[int, int, int], num_classes: int) -> SmallCNN:
    """A SmallCNN for images of `input_shape` (C, H, W)."""
    return SmallCNN(input_shape[0], num_classes)
