"""Choose the training device and describe it."""

from __future__ import annotations

import torch

from .errors import ConfigError, FieldError


def resolve_device(name: str) -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an unavailable explicit choice is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError([FieldError("train.device", name, "CUDA is not available on this machine; use auto or cpu")])
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError([FieldError("train.device", name, "MPS is not available on this machine; use auto or cpu")])
    return torch.device(name)


def device_name(device: torch.device, auto_threads: bool = False) -> str:
    """A human name: the GPU model, or 'CPU (n threads)' (', auto' when the count was chosen for the machine)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    n = torch.get_num_threads()
    return f"CPU ({n} thread{'' if n == 1 else 's'}{', auto' if auto_threads else ''})"
