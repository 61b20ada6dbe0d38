"""Layer health as the Model tab shows it: LayerStats rolled up per module of the tree, the heatmap's history,
and the colours of the rules of thumb (update/weight ratio about 1e-3, CS231n; dead units under half)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ptviz.engine.events import LayerStats

GOOD_LOG_RATIO = (-4.0, -2.0)  # log10 of the update ratio around the rule of thumb's 1e-3
FAR_LOG_RATIO = (-5.0, -1.0)  # beyond these the advisor's notices fire (1e-5, 1e-2 with margin)
MAX_SAMPLES = 4096  # samples kept for the heatmap (it is reduced to its width anyway)


@dataclass(frozen=True)
class ModuleHealth:
    """One module's latest sample: every parameter under it counted together."""

    grad_norm: float | None  # sqrt of the sum of its tensors' squared gradient norms
    log_ratio: float | None  # log10(||update|| / ||weights||) over its tensors
    dead: float | None  # its own dead share (an activation module) or the largest among those inside it


def ratio_style(log_ratio: float | None) -> str:
    """Colour of an update ratio against the rule of thumb: green near 1e-3, yellow off, red far off."""
    if log_ratio is None or not math.isfinite(log_ratio):
        return "red" if log_ratio is not None else ""
    if GOOD_LOG_RATIO[0] <= log_ratio <= GOOD_LOG_RATIO[1]:
        return "green"
    return "yellow" if FAR_LOG_RATIO[0] <= log_ratio <= FAR_LOG_RATIO[1] else "red"


def dead_style(dead: float | None) -> str:
    """Colour of a dead share: red above half, yellow above a fifth."""
    if dead is None:
        return ""
    return "red" if dead > 0.5 else "yellow" if dead > 0.2 else "green"


def _log10(value: float) -> float:
    """log10 of a ratio: -inf for a layer the step did not move, inf for one that was all zeros or overflowed."""
    if not math.isfinite(value):
        return math.inf
    return math.log10(value) if value > 0 else -math.inf


class HealthHistory:
    """The samples of one run: the latest per module for the tree, the update ratios over time for the heatmap."""

    def __init__(self) -> None:
        self.latest: dict[str, ModuleHealth] = {}
        self.steps: list[int] = []
        self.layers: list[str] = []  # heatmap rows: modules that own a weight matrix or kernel, in model order
        self.ratios: dict[str, list[float]] = {}  # layer -> log10 update ratio per sample (nan where absent)

    def clear(self) -> None:
        """Forget every sample (a new run starts)."""
        self.__init__()

    def __bool__(self) -> bool:
        return bool(self.steps)

    def add(self, stats: LayerStats) -> None:
        """Take one sample; a sample at or before the last step (a rollback, a resume) cuts the history there."""
        if self.steps and stats.step <= self.steps[-1]:
            keep = sum(1 for s in self.steps if s < stats.step)
            self.steps = self.steps[:keep]
            for values in self.ratios.values():
                del values[keep:]
        if len(self.steps) >= MAX_SAMPLES:  # the older half goes at once: a long attached log loads in linear time
            drop = MAX_SAMPLES // 2
            self.steps = self.steps[drop:]
            for values in self.ratios.values():
                del values[:drop]
        self.steps.append(stats.step)
        self.latest = rollup(stats)
        own = _own_ratios(stats)
        for layer, value in own.items():
            if layer not in self.ratios:
                self.layers.append(layer)
                self.ratios[layer] = [math.nan] * (len(self.steps) - 1)
        for layer in self.layers:
            self.ratios[layer].append(own.get(layer, math.nan))


def _own_ratios(stats: LayerStats) -> dict[str, float]:
    """log10 update ratio of each module's own weight matrices and kernels (biases and normalisation scales, one
    dimension, do not follow the rule; a log without ranks counts every tensor named weight)."""
    sums: dict[str, list[float]] = {}
    ranks = stats.ranks or (2,) * len(stats.params)
    for name, weight, update, rank in zip(stats.params, stats.weight_norms, stats.update_norms, ranks):
        if not name.endswith("weight") or rank < 2:
            continue
        module = name.rpartition(".")[0]
        acc = sums.setdefault(module, [0.0, 0.0])
        acc[0] += update * update
        acc[1] += weight * weight
    out = {}
    for module, (u2, w2) in sums.items():
        value = _log10(math.sqrt(u2) / math.sqrt(w2)) if w2 > 0 else None
        out[module] = value if value is not None else math.nan
    return out


def rollup(stats: LayerStats) -> dict[str, ModuleHealth]:
    """Every module of the tree (and the model, "") with the sums of the parameters and activations under it."""
    sums: dict[str, list[float]] = {}  # module -> [sum grad², sum update², sum weight²]
    for name, grad, weight, update in zip(stats.params, stats.grad_norms, stats.weight_norms, stats.update_norms):
        for module in _owners(name.rpartition(".")[0]):
            acc = sums.setdefault(module, [0.0, 0.0, 0.0])
            acc[0] += grad * grad
            acc[1] += update * update
            acc[2] += weight * weight
    dead: dict[str, float] = {}
    for name, share in zip(stats.activations, stats.dead):
        for module in _owners(name):
            if math.isfinite(share):
                dead[module] = max(dead.get(module, 0.0), share)
    out = {}
    for module in sums.keys() | dead.keys():
        g2, u2, w2 = sums.get(module, (math.nan, math.nan, math.nan))
        ratio = _log10(math.sqrt(u2) / math.sqrt(w2)) if module in sums and w2 > 0 else None
        grad = math.sqrt(g2) if module in sums else None
        out[module] = ModuleHealth(grad, ratio, dead.get(module))
    return out


def _owners(module: str) -> list[str]:
    """`module` and every module above it, up to the model ("")."""
    parts = module.split(".") if module else []
    return [".".join(parts[:i]) for i in range(len(parts), -1, -1)]
