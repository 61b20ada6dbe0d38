"""Forward hooks on activation modules that measure dead units, mean and std on the device, without a sync.

A unit is a feature of a 2-D or 3-D output (the last dimension) or a channel of a 4-D or 5-D one (dimension 1).
It is dead over a batch when it never fired: a rectifier's output was never positive, a squashing function's was
saturated for every sample. The hooks exist only while a sampled step's forward pass runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

# Rectifiers and their smooth relatives: a unit whose output is never positive passes no gradient worth having.
RECTIFIERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
              nn.Mish, nn.Hardswish)
# Squashing functions: (low, high) outside which a unit is saturated, its gradient nearly zero.
SATURATING: dict[type, tuple[float, float]] = {nn.Tanh: (-0.99, 0.99), nn.Hardtanh: (-1.0, 1.0),
                                               nn.Sigmoid: (0.01, 0.99), nn.Hardsigmoid: (0.0, 1.0)}
ACTIVATIONS = RECTIFIERS + tuple(SATURATING)


def activation_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every activation module, each once even where the model calls it several times."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, ACTIVATIONS)]


def unit_alive(fired: torch.Tensor) -> torch.Tensor:
    """Per unit, whether it fired for any sample (and any position): features last, or channels at dimension 1."""
    if fired.dim() <= 1:
        return fired.reshape(-1).any().reshape(1)
    if fired.dim() >= 4:
        return fired.transpose(0, 1).flatten(1).any(1)
    return fired.flatten(0, -2).any(0)


def output_stats(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """[dead share, mean, std] of one call's output, as a float32 device tensor."""
    y = output.detach().float()
    bounds = next((b for kind, b in SATURATING.items() if isinstance(module, kind)), None)
    if bounds is None:
        fired = y > 0
    else:
        fired = (y > bounds[0]) & (y < bounds[1])
        if isinstance(module, nn.Hardtanh):
            fired = (y > module.min_val) & (y < module.max_val)
    dead = 1.0 - unit_alive(fired).float().mean()
    std = y.std() if y.numel() > 1 else torch.zeros((), device=y.device)
    return torch.stack([dead, y.mean(), std])


class ActivationProbe:
    """Collects output statistics of a model's activation modules during one forward pass."""

    def __init__(self, model: nn.Module):
        self.modules = activation_modules(model)
        self.calls: dict[str, list[torch.Tensor]] = {}

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Hooks on every activation module for the duration of the block, removed however it ends."""
        self.calls = {name: [] for name, _ in self.modules}
        handles = [module.register_forward_hook(self._hook(name)) for name, module in self.modules]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _hook(self, name: str):
        calls = self.calls

        def hook(module: nn.Module, args: object, output: object) -> None:
            if isinstance(output, torch.Tensor) and output.is_floating_point() and output.numel():
                calls[name].append(output_stats(module, output))

        return hook

    def take(self) -> tuple[tuple[str, ...], torch.Tensor | None]:
        """Names of the modules that ran and their (n, 3) statistics, averaged over repeated calls."""
        names = tuple(name for name, found in self.calls.items() if found)
        stats = torch.stack([torch.stack(self.calls[n]).mean(0) for n in names]) if names else None
        self.calls = {}
        return names, stats
