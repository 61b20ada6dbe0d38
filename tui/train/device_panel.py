"""Device panel: GPU utilisation, memory and temperature with torch's allocator view, or CPU and memory."""

from __future__ import annotations

import threading

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from .device_stats import DeviceReading, human_bytes, used_of_total

SAMPLE_SECONDS = 1.0


def _bar(fraction: float, width: int = 8) -> Text:
    fraction = max(0.0, min(1.0, fraction))
    filled = int(round(fraction * width))
    colour = "green" if fraction < 0.7 else "yellow" if fraction < 0.9 else "red"
    return Text("█" * filled, colour) + Text("░" * (width - filled), "dim")


def render_reading(r: DeviceReading) -> Table:
    """A small table: one block per GPU, then CPU and memory."""
    t = Table.grid(padding=(0, 1))
    t.add_column(no_wrap=True, min_width=5)
    t.add_column(no_wrap=True, min_width=8, max_width=12)
    t.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for g in r.gpus:
        t.add_row(Text(f"GPU{g.index}", "bold"), Text(g.name, "dim"), "")
        t.add_row("util", _bar(g.util_percent / 100), f"{g.util_percent:.0f}%")
        t.add_row("mem", _bar(g.mem_used / max(1, g.mem_total)),
                  used_of_total(g.mem_used, g.mem_total))
        if g.temperature_c is not None:
            t.add_row("temp", _bar(g.temperature_c / 100), f"{g.temperature_c:.0f}°C")
        if g.torch_allocated is not None:
            t.add_row("torch", Text("alloc", "dim"), f"{human_bytes(g.torch_allocated)} (peak {human_bytes(g.torch_peak)})")
    t.add_row(Text("CPU", "bold"), _bar(r.cpu_percent / 100), f"{r.cpu_percent:.0f}% of {r.cpu_count}")
    t.add_row("RAM", _bar(r.mem_used / max(1, r.mem_total)), used_of_total(r.mem_used, r.mem_total))
    t.add_row("proc", Text("rss", "dim"), human_bytes(r.process_rss))
    if not r.gpus:
        t.add_row(Text("GPU", "dim"), Text("none", "dim"), Text("no NVML" if r.nvml_error else "", "dim"))
    return t


class DevicePanel(Static):
    """Reads the device once a second on a thread of its own; shows the newest reading with the next frame.

    The thread leaves each reading in a slot that the frame clock's `flush` takes (only the first one posts a
    message, so the panel is filled before any frame): a worker per reading cost the UI thread a thread start
    and three worker messages a second, each a wake-up that stalls torch's threads on a CPU.
    """

    DEFAULT_CSS = """
    DevicePanel { height: auto; min-height: 4; border: round $panel-lighten-2; padding: 0 1;
                  border-title-color: $text-muted; }
    DevicePanel:focus { border: round $accent; }
    """
    can_focus = True

    def __init__(self, **kwargs):
        super().__init__("reading device…", **kwargs)
        self.border_title = "device"
        self.reading: DeviceReading | None = None  # the newest reading the sampler left (set on its thread)
        self._shown: DeviceReading | None = None
        self._rows = -1  # rows of the table shown
        self._stop = threading.Event()

    def on_mount(self) -> None:
        threading.Thread(target=self._sample, name="ptviz-device", daemon=True).start()

    def on_unmount(self) -> None:
        self._stop.set()

    def _sample(self) -> None:
        """The sampler thread: a reading a second until the panel is taken down (NVML or psutil never stall
        the UI)."""
        from .device_stats import DeviceSampler
        from ..messages import DeviceSampled

        sampler = DeviceSampler()
        while not self._stop.is_set():
            try:
                reading = sampler.read()
            except Exception:  # noqa: BLE001 - a failed reading is skipped; the panel keeps the last one
                self._stop.wait(SAMPLE_SECONDS)
                continue
            first = self.reading is None
            self.reading = reading  # one reference replaced: the UI thread sees the old reading or this one
            if first:
                self.post_message(DeviceSampled(reading))
            self._stop.wait(SAMPLE_SECONDS)

    def on_device_sampled(self, message) -> None:
        message.stop()
        self.flush()  # the first reading; later ones wait for the app's next frame

    def flush(self) -> bool:
        """Show the newest reading if it is not shown yet (the app's frame clock calls this)."""
        reading = self.reading
        if reading is None or reading is self._shown:
            return False
        self._shown = reading
        table = render_reading(reading)
        # Same number of rows, same height: skip the whole-screen layout pass a resize would need.
        self.update(table, layout=table.row_count != self._rows)
        self._rows = table.row_count
        return True
