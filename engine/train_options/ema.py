"""An exponential moving average of a model's weights, updated on the device after every optimizer step.

After n steps, ema = decay * ema + (1 - decay) * weights, starting from the weights the run starts with.
Floating-point parameters and buffers (BatchNorm statistics) are averaged; integer buffers are copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """The averaged copy of `model`'s state, keyed like its state_dict."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        named = {**dict(model.named_parameters(remove_duplicate=False)),
                 **dict(model.named_buffers(remove_duplicate=False))}
        # The live tensors, so each update reads the weights where they are: no state_dict() per step.
        # A tensor shared under two names (tied weights) is averaged once.
        self.live: list[torch.Tensor] = []
        self.index: dict[str, int] = {}  # state_dict name -> position in live and average
        seen: dict[int, int] = {}
        for name in model.state_dict():
            tensor = named.get(name)
            if tensor is None:
                continue
            if id(tensor) not in seen:
                seen[id(tensor)] = len(self.live)
                self.live.append(tensor)
            self.index[name] = seen[id(tensor)]
        self.average = [t.detach().clone() for t in self.live]
        self._floats = [i for i, t in enumerate(self.live) if t.is_floating_point()]
        self._others = [i for i, t in enumerate(self.live) if not t.is_floating_point()]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current weights (no sync)."""
        if self._floats:
            torch._foreach_lerp_([self.average[i] for i in self._floats],
                                 [self.live[i].detach() for i in self._floats], 1.0 - self.decay)
        for i in self._others:
            self.average[i].copy_(self.live[i])

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights under the model's state_dict names (what load_state_dict of the model takes)."""
        return {name: self.average[i] for name, i in self.index.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Take the averaged weights a checkpoint holds; KeyError names one the checkpoint lacks."""
        for name, i in self.index.items():
            self.average[i].copy_(state[name])

    @torch.no_grad()
    def equal_where_fixed(self) -> bool:
        """Whether the average equals the model wherever the model does not train now (frozen weights, buffers),
        so features computed from those parts hold for the average too. Reads the device: call it per evaluation,
        never per step."""
        return all(torch.equal(self.average[i], t) for i, t in enumerate(self.live) if not t.requires_grad)

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Let the model compute with the averaged weights, then give it its own back (no copies)."""
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def _swap(self) -> None:
        for i, tensor in enumerate(self.live):
            tensor.data, self.average[i] = self.average[i], tensor.data
