"""The device panel's GPU rows, read through a stand-in NVML module (this machine has no GPU)."""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest
from rich.console import Console

from ptviz.tui.train.device_panel import render_reading
from ptviz.tui.train.device_stats import DeviceSampler

GIB = 1024**3


def fake_nvml(devices: list[dict], vanish_after: int | None = None) -> types.ModuleType:
    """A module with the pynvml calls the sampler makes, answering from `devices`."""
    nv = types.ModuleType("pynvml")
    nv.NVML_TEMPERATURE_GPU = 0
    calls = {"handles": 0}

    def handle(i):
        calls["handles"] += 1
        if vanish_after is not None and calls["handles"] > vanish_after:
            raise RuntimeError("GPU is lost")
        return devices[i]

    def temperature(h, sensor):
        if h.get("temp") is None:
            raise RuntimeError("not supported")
        return h["temp"]

    nv.nvmlInit = lambda: None
    nv.nvmlDeviceGetCount = lambda: len(devices)
    nv.nvmlDeviceGetHandleByIndex = handle
    nv.nvmlDeviceGetMemoryInfo = lambda h: SimpleNamespace(used=h["used"], total=h["total"])
    nv.nvmlDeviceGetTemperature = temperature
    nv.nvmlDeviceGetName = lambda h: h["name"]
    nv.nvmlDeviceGetUtilizationRates = lambda h: SimpleNamespace(gpu=h["util"])
    return nv


def text_of(reading) -> str:
    console = Console(width=60, record=True, color_system=None)
    console.print(render_reading(reading))
    return console.export_text()


H200 = {"name": b"NVIDIA H200", "util": 87, "used": 40 * GIB, "total": 141 * GIB, "temp": 61}
A100 = {"name": "NVIDIA A100", "util": 3, "used": 1 * GIB, "total": 80 * GIB, "temp": None}


def test_each_gpu_gets_its_name_utilisation_memory_and_temperature(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([H200, A100]))
    reading = DeviceSampler().read()
    assert reading.nvml_error is None
    assert [(g.index, g.name, g.util_percent, g.mem_used, g.mem_total, g.temperature_c) for g in reading.gpus] == [
        (0, "NVIDIA H200", 87.0, 40 * GIB, 141 * GIB, 61.0),
        (1, "NVIDIA A100", 3.0, 1 * GIB, 80 * GIB, None),
    ]
    shown = text_of(reading)
    assert "GPU0" in shown and "NVIDIA H200" in shown and "87%" in shown
    assert "40.0/141 GiB" in shown and "61°C" in shown
    assert "GPU1" in shown and "1.0/80 GiB" in shown
    assert shown.count("temp") == 1  # a GPU without a temperature sensor gets no temperature row
    assert "none" not in shown and "no NVML" not in shown
    assert "CPU" in shown and "RAM" in shown


def test_a_gpu_lost_mid_read_is_reported_and_the_next_good_read_clears_it(monkeypatch):
    nv = fake_nvml([H200, A100], vanish_after=1)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    sampler = DeviceSampler()
    reading = sampler.read()  # must not raise
    assert reading.nvml_error == "RuntimeError: GPU is lost"
    assert [g.name for g in reading.gpus] == ["NVIDIA H200"]  # what was read before the loss
    assert "NVIDIA H200" in text_of(reading) and "CPU" in text_of(reading)
    nv.nvmlDeviceGetHandleByIndex = lambda i: [H200, A100][i]  # the driver is back
    again = sampler.read()
    assert again.nvml_error is None and len(again.gpus) == 2


def test_no_nvml_library_means_cpu_only(monkeypatch):
    broken = types.ModuleType("pynvml")

    def no_driver():
        raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    broken.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    reading = DeviceSampler().read()
    assert reading.gpus == () and reading.nvml_error == "OSError"
    shown = text_of(reading)
    assert "none" in shown and "no NVML" in shown


@pytest.mark.parametrize("used,total,expected", [(int(0.9 * GIB), 24 * GIB, "0.9/24 GiB"),
                                                 (512 * 1024**2, 2 * GIB, "0.5/2.0 GiB")])
def test_memory_is_shown_in_the_totals_unit(used, total, expected):
    from ptviz.tui.train.device_stats import used_of_total

    assert used_of_total(used, total) == expected


async def test_panel_takes_readings_from_its_own_thread_with_the_frames(digits_config):
    """One sampler thread reads the device every second and the frame clock shows its newest reading: no worker
    is started per reading, and the thread ends with the app."""
    import threading

    from cockpit_helpers import settle, wait_for
    from ptviz.tui.app import PtvizApp
    from ptviz.tui.train.device_panel import DevicePanel

    app = PtvizApp(digits_config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        panel = app.query_one(DevicePanel)
        await wait_for(pilot, lambda: panel._shown is not None, what="first reading shown")
        first = panel._shown
        await wait_for(pilot, lambda: panel._shown is not first, what="a later reading shown by a frame")
        await pilot.pause()
        shown = "".join(panel.render_line(y).text for y in range(panel.size.height))
        assert "CPU" in shown and "RAM" in shown
        assert not [w for w in app.workers if w.group == "device"]
        samplers = [t for t in threading.enumerate() if t.name == "ptviz-device"]
        assert samplers
    for thread in samplers:
        thread.join(timeout=5)
        assert not thread.is_alive()
