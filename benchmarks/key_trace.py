"""Where a key's time goes in the real cockpit: slow handlers, layout and paint passes, garbage collection.

Not a measurement with a target (P3 is, in a real terminal): a tool for finding what to make cheaper. The
cockpit runs under Textual's test driver at 160×48 (it paints every frame, only the tty write is skipped);
each key is pressed, the app left to go idle, and what happened meanwhile is printed, with milliseconds
since the key: handlers that took over 15 ms, every layout (`_refresh_layout`) and paint
(`_compositor_refresh`) pass, and the collector's passes per generation with the full ones' durations.
`--train` starts digits first and gives each key two seconds (training never lets the app go idle).
Full passes run on a clock in the real cockpit (tui.heap); `--gc-clock` does the same here.

    python -m benchmarks.key_trace 2 greater_than_sign less_than_sign plus minus o o
    python -m benchmarks.key_trace --train --gc-clock 2 greater_than_sign greater_than_sign less_than_sign
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time

SLOW_HANDLER_MS = 15.0


class Trace:
    """What happened since the last key, with times relative to it."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.lines: list[str] = []
        self.gc_ms = 0.0
        self.passes = [0, 0, 0]
        self.full_ms: list[int] = []
        self._gc_start = 0.0

    def since(self) -> float:
        return 1000 * (time.perf_counter() - self.start)

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            return
        took = 1000 * (time.perf_counter() - self._gc_start)
        self.gc_ms += took
        self.passes[info["generation"]] += 1
        if info["generation"] == 2:
            self.full_ms.append(round(took))


def instrument(trace: list[Trace]) -> None:
    """Record slow handlers and every layout and paint pass into trace[0] (replaced at each key)."""
    from textual.message_pump import MessagePump
    from textual.screen import Screen

    dispatch = MessagePump._dispatch_message

    async def timed_dispatch(self, message):
        start = time.perf_counter()
        try:
            return await dispatch(self, message)
        finally:
            took = 1000 * (time.perf_counter() - start)
            if took > SLOW_HANDLER_MS:
                trace[0].lines.append(f"{trace[0].since():7.0f}  handler {type(self).__name__}."
                                      f"{type(message).__name__} {took:.0f} ms")

    MessagePump._dispatch_message = timed_dispatch
    for name in ("_compositor_refresh", "_refresh_layout"):
        original = getattr(Screen, name)

        def timed(self, *args, _original=original, _name=name, **kwargs):
            start = time.perf_counter()
            result = _original(self, *args, **kwargs)
            trace[0].lines.append(f"{trace[0].since():7.0f}  {_name} {1000 * (time.perf_counter() - start):.0f} ms")
            return result

        setattr(Screen, name, timed)
    gc.callbacks.append(lambda phase, info: trace[0].on_gc(phase, info))


async def run(keys: list[str], train: bool, gc_clock: bool) -> None:
    from benchmarks.cockpit_driver import SIZE, press, settle
    from ptviz.engine.recipes import recipe
    from ptviz.tui.app import PtvizApp

    trace = [Trace()]
    instrument(trace)
    config = recipe("digits-mlp")
    config.train.epochs = 1000
    with tempfile.TemporaryDirectory(prefix="ptviz-trace-") as runs:
        config.output.runs_dir = runs
        app = PtvizApp(config)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            if gc_clock:
                gc.set_threshold(*gc.get_threshold()[:2], 2**31 - 1)
            if train:
                press(app, "s")
                await asyncio.sleep(3)
            for key in keys:
                trace[0] = t = Trace()
                cpu = time.process_time()
                if train:
                    press(app, key)
                    await asyncio.sleep(2.0)
                else:
                    await pilot.press(key)
                    await pilot.pause()
                    await pilot.pause()
                print(f"{key}: {t.since():.0f} ms to idle, {1000 * (time.process_time() - cpu):.0f} ms CPU; "
                      f"gc {t.gc_ms:.0f} ms, passes per generation {t.passes}, full passes {t.full_ms} ms")
                print("\n".join(t.lines))
            if train:
                press(app, "x")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.key_trace", description=__doc__.splitlines()[0])
    parser.add_argument("keys", nargs="+", help="Textual key names: 2, greater_than_sign, plus, o, ...")
    parser.add_argument("--train", action="store_true", help="start digits first; two seconds a key")
    parser.add_argument("--gc-clock", action="store_true", help="no full collections started by allocations")
    args = parser.parse_args()
    os.environ.setdefault("PTVIZ_IMAGES", "halfcell")
    asyncio.run(run(args.keys, args.train, args.gc_clock))


if __name__ == "__main__":
    main()
