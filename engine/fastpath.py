"""Speed choices made once at setup: arithmetic precision and memory format for convnets on CUDA.

On the CPU every choice here resolves to the plain path, so CPU results do not depend on them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def has_conv(model: nn.Module) -> bool:
    """Whether the model contains a convolution (the layers bf16 and channels_last speed up)."""
    return any(isinstance(m, _CONVS) for m in model.modules())


def resolve_precision(requested: str, device: torch.device, model: nn.Module) -> str:
    """'auto' is bf16 for convnets on a CUDA device that supports it, fp32 everywhere else."""
    if requested != "auto":
        return requested
    if device.type == "cuda" and has_conv(model) and torch.cuda.is_bf16_supported():
        return "bf16"
    # An MLP gains little from bf16 and the CPU's bf16 kernels are often slower than fp32.
    return "fp32"


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for fp32)."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def use_channels_last(model: nn.Module, device: torch.device) -> bool:
    """On CUDA, store a convnet's weights channels-last and convert its 4-D inputs the same way."""
    if device.type != "cuda" or not has_conv(model):
        return False
    model.to(memory_format=torch.channels_last)  # type: ignore[call-arg]
    model.register_forward_pre_hook(_channels_last_input)
    return True


def _channels_last_input(module: nn.Module, args: tuple) -> tuple | None:
    if args and isinstance(args[0], torch.Tensor) and args[0].ndim == 4:
        return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])
    return None
