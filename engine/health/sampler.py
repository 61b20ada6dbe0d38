"""Layer health sampled every train.health_interval optimizer steps, computed on the device, read with the loss.

On a sampled step the first batch's forward pass runs with hooks on the activation modules (activations.py),
and around the optimizer step the gradients' norms are taken, the weights copied, and the copy's distance to
the updated weights measured. Everything stays on the device until the loop's read point, where all samples
taken since the last read come to the host in one copy: by then the device has finished them, so the copy
waits for nothing. On every other step nothing runs: no hook exists, nothing is copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from ..events import LayerStats
from . import histograms
from .activations import ActivationProbe

_NO_HOOKS = nullcontext()


@dataclass
class _Sample:
    """One sampled step still on the device."""

    step: int
    params: tuple[str, ...]
    norms: torch.Tensor  # (3, n): gradient, weight and update norms
    activations: tuple[str, ...]
    act_stats: torch.Tensor | None  # (m, 3): dead share, mean, std
    hist_tags: tuple[tuple[str, int], ...]  # (tag, numel) per histogram
    hists: torch.Tensor | None  # (k, histograms.WIDTH)
    ranks: tuple[int, ...]  # dimensions of each parameter


class HealthSampler:
    """Takes per-layer statistics of `model` on every `interval`-th optimizer step (steps counted from 1)."""

    def __init__(self, model: nn.Module, interval: int, scaler: torch.amp.GradScaler | None = None,
                 activations: bool = True):
        self.model = model
        self.interval = interval
        self.scaler = scaler
        self.probe = ActivationProbe(model) if activations else None
        self.device = next(model.parameters(), torch.empty(0)).device
        self.histograms = False  # also bucket weights and gradients (set when TensorBoard writes them)
        self.pending: list[_Sample] = []
        self._acts: tuple[tuple[str, ...], torch.Tensor | None] = ((), None)
        self._step: int | None = None  # the sampled step between before_step() and after_step()
        self._named: list[tuple[str, nn.Parameter]] = []
        self._before: list[torch.Tensor] = []
        self._grad_norms: torch.Tensor | None = None
        self._weight_norms: torch.Tensor | None = None
        self._grad_hists: list[torch.Tensor] = []

    def due(self, step: int) -> bool:
        """Whether optimizer step `step` (1-based) is sampled."""
        return step % self.interval == 0

    def watching(self, step: int) -> AbstractContextManager:
        """A context for the forward pass of step `step`'s first batch: hooks when it is sampled, else nothing."""
        if self.probe is None or not self.due(step):
            return _NO_HOOKS
        return self._watch()

    @contextmanager
    def _watch(self) -> Iterator[None]:
        with self.probe.watching():  # type: ignore[union-attr]
            yield
        self._acts = self.probe.take()  # type: ignore[union-attr]

    def before_step(self, step: int) -> bool:
        """Before optimizer step `step`: gradient norms and a copy of the weights, when sampled."""
        if not self.due(step):
            return False
        named = [(n, p) for n, p in self.model.named_parameters()
                 if p.grad is not None and not p.grad.is_sparse]
        self._step, self._named = step, named
        if not named:
            return True
        grads = [p.grad.detach() for _, p in named]  # type: ignore[union-attr]
        norms = torch.stack([n.float() for n in torch._foreach_norm(grads)])
        scale = getattr(self.scaler, "_scale", None) if self.scaler is not None else None
        if scale is not None:  # fp16: the gradients are still multiplied by the loss scale here
            norms = norms / scale.float()
        self._grad_norms = norms
        self._before = [p.detach().clone() for _, p in named]
        self._weight_norms = torch.stack([n.float() for n in torch._foreach_norm(self._before)])
        if self.histograms:
            self._grad_hists = [histograms.summarize(g) for g in grads]
            if scale is not None:
                self._grad_hists = [_unscaled(h, scale) for h in self._grad_hists]
        return True

    def after_step(self) -> None:
        """After the sampled optimizer step: how far it moved each tensor; the sample waits to be read."""
        step, named = self._step, self._named
        if step is None:
            return
        self._step = None
        activations, act_stats = self._acts
        self._acts = ((), None)
        if not named:
            norms = torch.zeros((3, 0))
        else:
            torch._foreach_sub_(self._before, [p.detach() for _, p in named])
            updates = torch.stack([n.float() for n in torch._foreach_norm(self._before)])
            norms = torch.stack([self._grad_norms, self._weight_norms, updates])  # type: ignore[list-item]
        tags: tuple[tuple[str, int], ...] = ()
        hists = None
        if self.histograms and named:
            tags = tuple((f"{kind}/{n}", p.numel()) for kind in ("weights", "grads") for n, p in named)
            hists = torch.stack([histograms.summarize(p) for _, p in named] + self._grad_hists)
        self.pending.append(_Sample(step, tuple(n for n, _ in named), norms, activations, act_stats, tags, hists,
                                    tuple(p.dim() for _, p in named)))
        self._before, self._named, self._grad_hists = [], [], []
        self._grad_norms = self._weight_norms = None

    def read(self) -> list[LayerStats]:
        """Every sample taken since the last read, copied to the host at once (call it at the loop's read point)."""
        if not self.pending:
            return []
        pending, self.pending = self.pending, []
        parts: list[torch.Tensor] = []
        for sample in pending:
            parts += [t for t in (sample.norms, sample.act_stats, sample.hists) if t is not None]
        values = torch.cat([t.reshape(-1).to(self.device) for t in parts]).tolist()  # one copy for every sample
        out, at = [], 0
        for sample in pending:
            n = len(sample.params)
            grad, weight, update = values[at:at + n], values[at + n:at + 2 * n], values[at + 2 * n:at + 3 * n]
            at += 3 * n
            m = len(sample.activations)
            acts = values[at:at + 3 * m]
            at += 3 * m
            found = []
            for tag, numel in sample.hist_tags:
                found.append(histograms.decode(tag, numel, values[at:at + histograms.WIDTH]))
                at += histograms.WIDTH
            out.append(LayerStats(sample.step, sample.params, tuple(grad), tuple(weight), tuple(update),
                                  sample.activations, tuple(acts[0::3]), tuple(acts[1::3]), tuple(acts[2::3]),
                                  tuple(found), sample.ranks))
        return out

    def discard(self) -> None:
        """Forget samples not yet read (a rollback returns to before them)."""
        self.pending = []
        self._step = None
        self._acts = ((), None)


def _unscaled(summary: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """A gradient histogram of fp16-scaled values in true units: values divide by the scale, squares by its square."""
    out = summary.clone()
    s = scale.float().reshape(())
    out[:3] = out[:3] / s
    out[3] = out[3] / (s * s)
    out[4:5 + histograms.BUCKETS] = out[4:5 + histograms.BUCKETS] / s
    return out
