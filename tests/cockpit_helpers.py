"""Helpers for driving the cockpit in pilot tests: waiting on app state, never sleeping blindly."""

from __future__ import annotations

import time


async def wait_for(pilot, predicate, timeout: float = 60.0, what: str = "condition") -> None:
    """Let the app process events until `predicate()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def type_into(pilot, widget_id: str, text: str) -> None:
    """Replace the text of an Input by focusing it and typing, as a user would."""
    app = pilot.app
    widget = app.query_one(f"#{widget_id}")
    app.set_focus(widget)
    await pilot.pause()
    widget.value = ""
    await pilot.press(*list(text))
    await pilot.press("escape")
    await pilot.pause()


async def settle(pilot, timeout: float = 60.0) -> None:
    """Wait until the app's background work (data jobs, statistics, previews) has finished and painted."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app's workers to finish")
        busy = any(not w.is_finished for w in pilot.app.workers)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.1)
        quiet = 0 if busy else quiet + 1
