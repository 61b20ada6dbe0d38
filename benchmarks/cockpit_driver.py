"""Driving the real cockpit headless for P2 and P3: let its start-up work settle, count the frames it paints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from textual.screen import Screen

SIZE = (160, 48)  # a large terminal: all five charts show


async def settle(app, pilot, timeout: float = 60.0) -> None:
    """Wait until the start-up work (data preview, model summary) has finished, so it is not timed."""
    deadline = time.monotonic() + timeout
    await pilot.pause(0.6)  # the data and model tabs start their work after a short debounce
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        busy = any(not w.is_finished for w in app.workers)
        # A worker cancelled meanwhile (a newer preview replaced it) counts as done, not as a failure.
        await asyncio.gather(*[w.wait() for w in app.workers], return_exceptions=True)
        await pilot.pause(0.2)
        quiet = 0 if busy else quiet + 1


def press(app, key: str) -> None:
    """Hand a key to the app the way the terminal's input thread does (the pilot's press also waits for
    the process to go idle, polling fifty times a second, which training never lets happen)."""
    from textual import events

    app._driver.send_message(events.Key(key, key))


async def wait_for_thread_event(event) -> None:
    """Wait for a threading.Event without polling (a pool thread blocks on it)."""
    await asyncio.get_running_loop().run_in_executor(None, event.wait)


@dataclass
class Frames:
    """How many screen updates the compositor rendered."""

    count: int = 0


@contextmanager
def counting_frames() -> Iterator[Frames]:
    """Count the screen updates Textual renders (the test driver renders them; it only skips the tty write)."""
    frames = Frames()
    original = Screen._compositor_refresh

    def counted(self, *args, **kwargs):
        frames.count += 1
        return original(self, *args, **kwargs)

    Screen._compositor_refresh = counted
    try:
        yield frames
    finally:
        Screen._compositor_refresh = original
