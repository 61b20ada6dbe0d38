"""Helpers for driving the cockpit in pilot tests: waiting on app state, never sleeping blindly."""

from __future__ import annotations

import asyncio
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


_handling: dict[int, int] = {}  # id(message pump) -> messages it is handling now (awaiting inside a handler)


def _track_handlers() -> None:
    """Count, per message pump, the messages whose handler has started and not returned (once per process)."""
    from textual.message_pump import MessagePump

    if getattr(MessagePump, "_ptviz_tracked", False):
        return
    dispatch = MessagePump._dispatch_message

    async def tracked(self, message):
        key = id(self)
        _handling[key] = _handling.get(key, 0) + 1
        try:
            return await dispatch(self, message)
        finally:
            _handling[key] -= 1

    MessagePump._dispatch_message = tracked
    MessagePump._ptviz_tracked = True


_track_handlers()


def busy(app) -> list[str]:
    """What the app is still doing: workers not finished, and widgets with a message queued or in a handler.

    A handler that awaits something (a list rebuild, a grid of images) counts as busy, and so does the gap
    between a worker ending and the message it posted being handled: "no worker running" alone is not quiet.
    """
    doing = [f"worker {w.name}" for w in app.workers if not w.is_finished]
    nodes = [app]
    for screen in app.screen_stack:
        nodes += [screen, *screen.walk_children(with_self=False)]
    doing += [f"{type(n).__name__} messages" for n in nodes
              if n._message_queue.qsize() or _handling.get(id(n), 0)]
    return doing


async def _workers_done(app) -> None:
    """Wait for every worker to end, however it ends (an exclusive worker cancelled by its successor, a failure)."""
    await asyncio.gather(*[worker.wait() for worker in app.workers], return_exceptions=True)


async def settle(pilot, timeout: float = 120.0) -> None:
    """Wait until the app's background work (data jobs, statistics, previews) has finished and been handled."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        await _workers_done(pilot.app)
        await pilot.pause()
        doing = busy(pilot.app)
        if doing and time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for the app to settle: {', '.join(doing)}")
        quiet = 0 if doing else quiet + 1


def pause_runs_before_their_first_step(monkeypatch) -> None:
    """Runs started by the cockpit from now on are paused before their first step (then Resume lets them go)."""
    import ptviz.engine.loop as loop
    from ptviz.engine.commands import Pause

    real = loop.train

    def paused_before_its_first_step(config, sink, control, **options):
        control.send(Pause())
        return real(config, sink, control, **options)

    monkeypatch.setattr(loop, "train", paused_before_its_first_step)
