"""The collector's full passes run on a clock while the cockpit runs, and its thresholds come back after."""

import gc
import threading

from ptviz.tui.heap import full_passes_on_a_clock


def test_full_passes_run_on_the_clock_and_only_there():
    """Inside the block full passes come on the clock and piling allocations never start one (the third threshold
    is out of reach); afterwards the thresholds are Python's again."""
    before = gc.get_threshold()
    full_pass = threading.Event()

    def seen(phase, info):
        if phase == "stop" and info["generation"] == 2:
            full_pass.set()

    gc.callbacks.append(seen)
    try:
        with full_passes_on_a_clock(every=0.05):
            assert gc.get_threshold()[:2] == before[:2] and gc.get_threshold()[2] > 10**6
            assert full_pass.wait(30), "no full pass came on the clock"
    finally:
        gc.callbacks.remove(seen)
    assert gc.get_threshold() == before
