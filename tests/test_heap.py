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


def test_full_passes_are_spaced_out_while_a_run_trains():
    """While a run trains a pass holds the interpreter from the training thread, so the clock waits the longer
    interval then; once the run is no longer training, passes come on the short clock again."""
    from ptviz.tui import heap

    full_passes = []

    def seen(phase, info):
        if phase == "stop" and info["generation"] == 2:
            full_passes.append(threading.current_thread().name)

    heap.training(True)
    gc.callbacks.append(seen)
    try:
        with full_passes_on_a_clock(every=0.02, while_training=3600):
            for _ in range(10):  # ten ticks of the clock
                threading.Event().wait(0.03)
            assert "ptviz-gc" not in full_passes
            heap.training(False)
            for _ in range(500):
                if "ptviz-gc" in full_passes:
                    break
                threading.Event().wait(0.02)
            assert "ptviz-gc" in full_passes
    finally:
        heap.training(False)
        gc.callbacks.remove(seen)
