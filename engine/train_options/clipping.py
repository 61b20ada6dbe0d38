"""Gradient clipping by global norm, keeping the norm on the device so the step never waits for it."""

from __future__ import annotations

import torch


class GradClipper:
    """Scales the gradients of `params` down to a global L2 norm of at most `max_norm`."""

    def __init__(self, params: list[torch.nn.Parameter], max_norm: float):
        self.params = params
        self.max_norm = max_norm

    def clip(self) -> torch.Tensor:
        """Clip in place; returns the norm before clipping as a device tensor (no sync; inf or NaN left as is).

        Parameters without a gradient (frozen ones) do not count. Under a GradScaler, unscale first.
        """
        # error_if_nonfinite=False: a non-finite norm is the divergence check's (or the GradScaler's) to handle,
        # and checking it here would sync every step.
        return torch.nn.utils.clip_grad_norm_(self.params, self.max_norm, foreach=True, error_if_nonfinite=False)
