"""`ptviz-tui` with a profiler on its UI thread that the benchmark turns on and off by signal.

SIGUSR1 starts cProfile on the main thread (Textual's event loop: every handler, frame, layout and paint);
SIGUSR2 stops it and writes the stats to $PTVIZ_BENCH_PROFILE. Without signals it is `ptviz-tui` itself.

    PTVIZ_BENCH_PROFILE=/tmp/ui.prof python benchmarks/ui_profile_child.py --recipe mnist-mlp ...
"""

import cProfile
import os
import signal
import sys

profile = cProfile.Profile()


def _on(*_: object) -> None:
    profile.enable()


def _off(*_: object) -> None:
    profile.disable()
    target = os.environ.get("PTVIZ_BENCH_PROFILE")
    if target:
        profile.dump_stats(target + ".part")
        os.replace(target + ".part", target)  # whole or absent: the benchmark waits for the name


signal.signal(signal.SIGUSR1, _on)
signal.signal(signal.SIGUSR2, _off)

from ptviz.tui.cli import main  # noqa: E402 - the handlers first, so a signal never ends the process

sys.exit(main())
