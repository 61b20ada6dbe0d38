"""Rules of thumb over sampled layer health, turned into notices that name the layer and say what to try.

CS231n's rule: the update of a step is about 1e-3 of the weights (||Δθ|| / ||θ||). Far above (1e-2) the
learning rate is too high for that layer; far below (1e-5) it barely learns. A layer is told about once it
has stayed there for PATIENCE samples in a row, and again only after it came back. The same goes for an
activation module with more than half of its units dead, and for a gradient norm that jumps to SPIKE times
the median of its recent samples. The ratio rules look at weight tensors (two or more dimensions): biases
and normalisation scales start at zero or one and do not follow the rule.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

from ..events import LayerStats

HIGH_RATIO, LOW_RATIO = 1e-2, 1e-5
DEAD_SHARE = 0.5
PATIENCE = 5  # samples in a row
SPIKE = 10.0  # a gradient norm this many times its recent median is a spike
SPIKE_HISTORY, SPIKE_MIN = 20, 5  # samples the median is taken over, and needed before judging


def module_of(param: str) -> str:
    """The module that owns a parameter: 'layer1.0.conv1' for 'layer1.0.conv1.weight' ('' for the model)."""
    return param.rpartition(".")[0]


class HealthAdvisor:
    """Reads LayerStats one after another and says which layers stay far from the rules of thumb."""

    def __init__(self, ranks: dict[str, int] | None = None):
        self.ranks = ranks or {}  # parameter name -> number of dimensions (the ratio rules need two or more)
        self.streaks: dict[str, int] = {}  # "high:fc1.weight" -> samples in a row the condition held
        self.told: set[str] = set()  # conditions told about and not yet cleared
        self.grad_history: dict[str, deque[float]] = {}

    def review(self, stats: LayerStats) -> list[str]:
        """Notices (warning texts) this sample calls for."""
        out: list[str] = []
        held: set[str] = set()
        if stats.ranks:  # the sample says; a model with lazy parameters has no ranks before its first batch
            self.ranks.update(zip(stats.params, stats.ranks))
        for name, ratio in zip(stats.params, stats.update_ratios()):
            if self.ranks.get(name, 2) < 2:
                continue
            if ratio > HIGH_RATIO:
                held.add(key := f"high:{name}")
                if self._due(key):
                    out.append(f"layer {module_of(name) or name}: update/weight ratio {ratio:.1e} for {PATIENCE} "
                               f"samples (rule of thumb ~1e-3): the learning rate is high for it; lower it "
                               f"([ or l) if the loss is unsteady")
            elif ratio < LOW_RATIO:
                held.add(key := f"low:{name}")
                if self._due(key):
                    out.append(f"layer {module_of(name) or name}: update/weight ratio {ratio:.1e} for {PATIENCE} "
                               f"samples (rule of thumb ~1e-3): it barely learns; raise the learning rate (]) "
                               f"or freeze it if that is meant")
        for name, dead in zip(stats.activations, stats.dead):
            if dead > DEAD_SHARE:
                held.add(key := f"dead:{name}")
                if self._due(key):
                    out.append(f"layer {name}: {dead:.0%} of its units dead over the batch for {PATIENCE} samples: "
                               f"lower the learning rate, check the initialisation, or try LeakyReLU")
        out += self._grad_spikes(stats, held)
        for key in list(self.streaks):
            if key not in held:
                del self.streaks[key]
                self.told.discard(key)
        return out

    def _due(self, key: str) -> bool:
        """Count one more sample of a condition; True the sample it reaches PATIENCE, untold."""
        self.streaks[key] = self.streaks.get(key, 0) + 1
        if self.streaks[key] >= PATIENCE and key not in self.told:
            self.told.add(key)
            return True
        return False

    def _grad_spikes(self, stats: LayerStats, held: set[str]) -> list[str]:
        out = []
        for name, norm in zip(stats.params, stats.grad_norms):
            if self.ranks.get(name, 2) < 2 or not math.isfinite(norm):
                continue
            history = self.grad_history.setdefault(name, deque(maxlen=SPIKE_HISTORY))
            median = statistics.median(history) if len(history) >= SPIKE_MIN else None
            if median and norm > SPIKE * median:
                held.add(key := f"spike:{name}")
                self.streaks[key] = 1
                if key not in self.told:
                    self.told.add(key)
                    out.append(f"layer {module_of(name) or name}: gradient norm {norm:.3g} is {norm / median:.0f}× "
                               f"its recent median ({median:.3g}) at step {stats.step:,}")
                continue  # a spike does not move the median it is judged against
            history.append(norm)
        return out

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps, so a resumed run tells the same notices at the same steps."""
        return {"streaks": dict(self.streaks), "told": sorted(self.told),
                "grad_history": {k: list(v) for k, v in self.grad_history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from state_dict()."""
        self.streaks = {str(k): int(v) for k, v in state.get("streaks", {}).items()}
        self.told = set(state.get("told", []))
        self.grad_history = {str(k): deque(map(float, v), maxlen=SPIKE_HISTORY)
                             for k, v in state.get("grad_history", {}).items()}
