"""One clock for the cockpit's periodic redraws, so charts, status line, log and device panel paint as one frame.

Training and the UI share the GIL, and on a CPU they share the cores: every millisecond the UI thread spends
is one the training thread waits. So the periodic work is batched into frames (one screen update instead of
one per widget), and the wait between frames grows with what the last frame cost, keeping the UI's share of
a core near FRAME_SHARE however large the terminal or slow the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.dom import DOMNode

MIN_SECONDS = 0.1  # at most ten frames a second, however fast events arrive
MAX_SECONDS = 1.0  # and at least one a second while something changes
FRAME_SHARE = 0.02


class FrameClock:
    """Calls each `step` (returning whether it changed anything) once a frame, at a pace set by the cost."""

    def __init__(self, node: DOMNode, steps: list[Callable[[], object]]):
        self.node = node
        self.steps = steps
        self.interval = MIN_SECONDS  # the current wait between frames
        self.frames = 0  # frames that changed something
        self.busy = 0.0  # UI-thread CPU seconds those frames took, paint included

    def start(self) -> None:
        """Begin ticking (from the node's on_mount)."""
        self._schedule(MIN_SECONDS)

    def _schedule(self, delay: float) -> None:
        self.interval = delay
        self.node.set_timer(delay, self._tick)

    def _tick(self) -> None:
        if not self.node.app.is_running:  # closing: the widgets the steps draw on are being taken down
            return
        start = time.thread_time()
        changed = [bool(step()) for step in self.steps]  # every step, so their repaints share one frame
        if any(changed):
            self.frames += 1
            self.node.call_after_refresh(self._painted, start)
        else:
            self._schedule(MIN_SECONDS)

    def _painted(self, start: float) -> None:
        """This thread's CPU time from the first step through the paint sets the next wait (GIL waits don't count)."""
        cost = time.thread_time() - start
        self.busy += cost
        self._schedule(min(MAX_SECONDS, max(MIN_SECONDS, cost / FRAME_SHARE)))
