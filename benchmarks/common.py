"""What every benchmark case shares: a result row, interleaved repeats and the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Result:
    """One measured figure against its target."""

    case: str  # P1..P5
    measure: str  # what was measured, in words
    value: float  # the figure the target applies to
    unit: str  # "x" for a ratio, "ms", "MB", "s"
    target: float | None  # None: reported, with no target to meet
    higher_is_better: bool
    baseline: str = ""  # the compared-against figure, as shown
    ours: str = ""  # ptviz's figure, as shown
    raw: dict[str, Any] = field(default_factory=dict)  # every repeat, for the JSON file

    @property
    def met(self) -> bool | None:
        """Whether the value reaches the target (None when there is none)."""
        if self.target is None:
            return None
        return self.value >= self.target if self.higher_is_better else self.value < self.target

    def shown(self, number: float) -> str:
        """A number in this row's unit."""
        return f"{number:.2f}×" if self.unit == "x" else f"{number:.3g} {self.unit}"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the JSON file."""
        return {**asdict(self), "met": self.met}


def interleaved(contenders: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each contender `repeats` times, alternating who goes first, so machine load hits both alike."""
    names = list(contenders)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            out[name].append(contenders[name]())
    return out


def median(values: list[float]) -> float:
    """The median, robust to the odd run slowed by another process."""
    return statistics.median(values)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, return value) of one call."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def machine() -> dict[str, Any]:
    """Where the figures were taken: versions, device, threads and how busy the CPU was."""
    import torch

    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return info
