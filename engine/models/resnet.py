"""torchvision's ResNet-18 with ImageNet weights from the local torch hub cache and a new head."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError


def weights_file() -> Path:
    """Where torchvision keeps (or would download) the ImageNet ResNet-18 weights."""
    from torchvision.models import ResNet18_Weights

    name = ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _pretrained_state(allow_download: bool, scratch: str) -> dict[str, torch.Tensor]:
    from torchvision.models import ResNet18_Weights

    path = weights_file()
    if not path.exists():
        if not allow_download:
            raise ModelError(
                f"model.pretrained: ResNet-18 ImageNet weights not found at {path}; copy "
                f"{path.name} there (or set TORCH_HOME), allow downloads with --download, "
                f"or train the whole network from scratch with {scratch}"
            )
        try:
            return torch.hub.load_state_dict_from_url(ResNet18_Weights.IMAGENET1K_V1.url, progress=False,
                                                      check_hash=True, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any network failure becomes one message
            raise ModelError(f"model.pretrained: downloading ResNet-18 weights failed: {exc}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file becomes one message
        raise ModelError(f"model.pretrained: {path} is not a readable weights file: {exc}") from None


def build(input_shape: tuple[int, int, int], num_classes: int, *, pretrained: bool = False,
          allow_download: bool = False, frozen_backbone: bool = False) -> nn.Module:
    """ResNet-18 for `num_classes`; a one-channel input gets conv1 summed over the RGB weights.

    `frozen_backbone` only shapes the advice when weights are missing: a random frozen backbone trains nothing.
    """
    from torchvision.models import resnet18

    model = resnet18(weights=None)
    if pretrained:
        scratch = "--no-pretrained --no-freeze-backbone" if frozen_backbone else "--no-pretrained"
        try:
            model.load_state_dict(_pretrained_state(allow_download, scratch))
        except RuntimeError as exc:
            raise ModelError(f"model.pretrained: weights at {weights_file()} do not fit ResNet-18: {exc}") from None
    if input_shape[0] != 3:
        old = model.conv1
        model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=7, stride=2, padding=3, bias=False)
        with torch.no_grad():
            model.conv1.weight.copy_(old.weight.sum(1, keepdim=True).repeat(1, input_shape[0], 1, 1)
                                     / input_shape[0])
    if num_classes != model.fc.out_features:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model
