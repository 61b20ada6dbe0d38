"""One clock for the cockpit's periodic redraws, so charts, status line, log and device panel paint as one frame.

Training and the UI share the GIL, and on a CPU they share the cores: every millisecond the UI thread spends
is one the training thread waits (with torch's two threads on two cores, both wait: the one the UI preempted
and the other at their next barrier). So the periodic work is batched into frames (one screen update instead
of one per widget), and the wait between frames grows with the UI thread's CPU time since the last frame (the
paint Textual does after the steps return is most of it), keeping the UI's share of a core near FRAME_SHARE
however large the terminal or slow the machine.

The charts are the heavy steps: a frame that replots them repaints most of the screen's height (Textual
renders every widget across the rows between the first and the last changed one), 25-35 ms of the UI thread at
200×60 on a 2-core CPU, where a frame of the status line, log and device panel costs a few. They are paced
apart, to HEAVY_SHARE of a core and at least every MAX_HEAVY_SECONDS, while the light steps keep their pace.
Each wake-up of the UI thread costs training more than its own CPU time (the torch thread it preempts, and
the other one waiting for it at their next barrier), so frames that draw something come at most PACE_SECONDS
apart: the engine's events that change state (a pause, the end) are handled at once, not by the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from textual.dom import DOMNode

MIN_SECONDS = 0.1  # how soon a clock that found nothing to draw looks again
PACE_SECONDS = 0.5  # at most two frames a second while something changes (a run's metrics arrive all the time)
MAX_SECONDS = 1.0  # and at least one a second
FRAME_SHARE = 0.02  # the UI thread's CPU time over the wall time between frames that draw
HEAVY_SHARE = 0.01  # the charts' frames: a 30 ms frame every 3 s
MAX_HEAVY_SECONDS = 3.0  # charts wait at most this long for new points to show


class FrameClock:
    """Calls each `step` (returning whether it changed anything) once a frame, at a pace set by the cost, and
    each of the `heavy` steps with the first frame after it is due (see the module docstring).

    The cost is all the UI thread's CPU time between two frames, the paint of the last one (done by Textual
    after the steps return) and every handler included: what training loses to the UI, however it is spent.
    """

    def __init__(self, node: DOMNode, steps: list[Callable[[], object]],
                 heavy: Sequence[Callable[[], object]] = (), now: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.thread_time):
        self.node = node
        self.steps = steps
        self.heavy = list(heavy)
        self.now, self.cpu = now, cpu  # the wall clock and this thread's CPU clock (a test passes its own)
        self.interval = MIN_SECONDS  # the current wait between frames
        self.heavy_due = 0.0  # when the heavy steps run again
        self.frames = 0  # frames that changed something
        self.busy = 0.0  # UI-thread CPU seconds between frames that changed something
        self._cpu_mark: float | None = None  # the CPU clock at the last frame that drew
        self._heavy_mark: tuple[float, float] | None = None  # (wall, CPU) of the last heavy frame, until costed

    def start(self) -> None:
        """Begin ticking (from the node's on_mount)."""
        self._schedule(MIN_SECONDS)

    def _schedule(self, delay: float) -> None:
        self.interval = delay
        self.node.set_timer(delay, self._tick)

    def _tick(self) -> None:
        if not self.node.app.is_running:  # closing: the widgets the steps draw on are being taken down
            return
        cpu, now = self.cpu(), self.now()
        spent = 0.0 if self._cpu_mark is None else cpu - self._cpu_mark  # since the last frame, its paint included
        if self._heavy_mark is not None:  # the last heavy frame has been painted: what it cost sets the next one
            at, heavy_cpu = self._heavy_mark
            self.heavy_due = at + min(MAX_HEAVY_SECONDS, max(MIN_SECONDS, (cpu - heavy_cpu) / HEAVY_SHARE))
            self._heavy_mark = None
        changed = [bool(step()) for step in self.steps]  # every step, so their repaints share one frame
        heavy = now >= self.heavy_due and any([bool(step()) for step in self.heavy])
        if not (heavy or any(changed)):
            self._cpu_mark = None  # nothing drawn: the next frame counts from its own start
            self._schedule(MIN_SECONDS)
            return
        self.frames += 1
        self.busy += spent
        self._cpu_mark = cpu
        if heavy:
            self._heavy_mark = (now, cpu)
        self._schedule(min(MAX_SECONDS, max(PACE_SECONDS, spent / FRAME_SHARE)))
