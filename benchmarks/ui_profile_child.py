"""`ptviz-tui` with a profiler on its UI thread that the benchmark turns on and off by signal.

SIGUSR1 starts cProfile on the main thread (Textual's event loop: every handler, frame, layout and paint) and
starts timing the garbage collector's full passes (on whatever thread runs them); SIGUSR2 stops both and writes
the stats to $PTVIZ_BENCH_PROFILE and the passes' seconds as JSON beside it (.gc.json). Without signals it is
`ptviz-tui` itself.

    PTVIZ_BENCH_PROFILE=/tmp/ui.prof python benchmarks/ui_profile_child.py --recipe mnist-mlp ...
"""

import cProfile
import gc
import json
import os
import signal
import sys
import time

profile = cProfile.Profile()
full_passes: list[float] = []  # seconds of each generation-2 collection while profiling
_started: list[float] = []


def _timing(phase: str, info: dict) -> None:
    if info["generation"] != 2:
        return
    if phase == "start":
        _started[:] = [time.perf_counter()]
    elif _started:
        full_passes.append(time.perf_counter() - _started[0])


def _on(*_: object) -> None:
    gc.callbacks.append(_timing)
    profile.enable()


def _off(*_: object) -> None:
    profile.disable()
    if _timing in gc.callbacks:
        gc.callbacks.remove(_timing)
    target = os.environ.get("PTVIZ_BENCH_PROFILE")
    if target:
        with open(target + ".gc.json", "w") as out:
            json.dump({"full_pass_seconds": full_passes}, out)
        profile.dump_stats(target + ".part")
        os.replace(target + ".part", target)  # whole or absent: the benchmark waits for the name


signal.signal(signal.SIGUSR1, _on)
signal.signal(signal.SIGUSR2, _off)

from ptviz.tui.cli import main  # noqa: E402 - the handlers first, so a signal never ends the process

sys.exit(main())
