"""Read GPU (NVML and torch) or CPU and process utilisation and memory, cheaply and never failing."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GpuReading:
    """One GPU's utilisation, memory and temperature (NVML) plus torch's allocator view."""

    index: int
    name: str
    util_percent: float
    mem_used: int
    mem_total: int
    temperature_c: float | None
    torch_allocated: int | None = None
    torch_peak: int | None = None


@dataclass(frozen=True)
class DeviceReading:
    """What the device panel shows: GPUs when present, CPU and this process always."""

    cpu_percent: float
    cpu_count: int
    process_rss: int
    mem_used: int
    mem_total: int
    gpus: tuple[GpuReading, ...] = field(default_factory=tuple)
    nvml_error: str | None = None


class DeviceSampler:
    """Keeps NVML and psutil handles between readings."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)
        psutil.cpu_percent(None)
        self._nvml = None
        self.nvml_error: str | None = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception as exc:  # noqa: BLE001 - no driver, no library, no GPU: all mean "CPU only"
            self.nvml_error = type(exc).__name__

    def read(self) -> DeviceReading:
        """A reading now; missing pieces are left out rather than raising."""
        ps = self._psutil
        vm = ps.virtual_memory()
        return DeviceReading(
            cpu_percent=ps.cpu_percent(None),
            cpu_count=ps.cpu_count() or 1,
            process_rss=self._process.memory_info().rss,
            mem_used=vm.total - vm.available,
            mem_total=vm.total,
            gpus=self._gpus(),
            nvml_error=self.nvml_error,
        )

    def _gpus(self) -> tuple[GpuReading, ...]:
        if self._nvml is None:
            return ()
        nv = self._nvml
        self.nvml_error = None  # an error is about the latest read only
        torch = sys.modules.get("torch")  # only if training already imported it: never import here
        out = []
        try:
            for i in range(nv.nvmlDeviceGetCount()):
                h = nv.nvmlDeviceGetHandleByIndex(i)
                mem = nv.nvmlDeviceGetMemoryInfo(h)
                try:
                    temp = float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))
                except Exception:  # noqa: BLE001
                    temp = None
                name = nv.nvmlDeviceGetName(h)
                allocated = peak = None
                if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
                    if i < torch.cuda.device_count():
                        allocated, peak = torch.cuda.memory_allocated(i), torch.cuda.max_memory_allocated(i)
                out.append(GpuReading(i, name.decode() if isinstance(name, bytes) else str(name),
                                      float(nv.nvmlDeviceGetUtilizationRates(h).gpu), int(mem.used),
                                      int(mem.total), temp, allocated, peak))
        except Exception as exc:  # noqa: BLE001 - a GPU that vanished mid-read: report and carry on
            self.nvml_error = f"{type(exc).__name__}: {exc}"
        return tuple(out)


def human_bytes(n: int | None) -> str:
    """1536 -> '1.5 KiB'."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def used_of_total(used: int, total: int) -> str:
    """(6.0 GiB, 23.5 GiB) -> '6.0/24 GiB': both in the total's unit, short enough for a narrow panel."""
    value, unit = float(total), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    scale = total / value if value else 1.0
    whole = f"{value:.0f}" if value >= 10 else f"{value:.1f}"
    return f"{used / scale:.1f}/{whole} {unit}"

