"""Keep the garbage collector's full passes off the keys: what start-up imported is taken out of their way, and
they run on a clock rather than when allocations pile up."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

FULL_PASS_SECONDS = 30.0  # cyclic garbage lives at most this long; a pass costs 0.1-0.3 s on a loaded 2-core CPU
# While a run trains, a pass holds the interpreter from the training thread for that long (0.18 and 0.29 s in a
# 65 s run at 200x60: 0.7% of its time, where headless pays none), so passes come this much further apart.
TRAINING_PASS_SECONDS = 300.0
_NEVER = 2**31 - 1  # a threshold the count of young collections never reaches
_training = threading.Event()  # set while a run trains in this process


def training(running: bool) -> None:
    """Say whether a run trains now: full passes then come every TRAINING_PASS_SECONDS (UI thread)."""
    if running:
        _training.set()
    else:
        _training.clear()


def freeze_imported() -> None:
    """Move every object alive now out of the collector's generations, for good.

    With torch, torchvision and Textual imported a full collection walks ~650k objects: about 1 s on a loaded
    2-core CPU, taken on the UI thread whenever enough new objects have survived (a zoom, a tab switch), so a
    key waited that long for its screen. Modules, classes and functions live as long as the process anyway;
    frozen (gc.freeze), the full passes walk only what the cockpit made since, a few hundred thousand
    objects fewer.
    """
    gc.freeze()


@contextmanager
def full_passes_on_a_clock(every: float = FULL_PASS_SECONDS,
                           while_training: float = TRAINING_PASS_SECONDS) -> Iterator[None]:
    """Run the collector's full passes every `every` seconds (`while_training` while a run trains), on a thread
    of their own, while the block runs.

    Python starts a full pass once enough new objects have survived, and in the cockpit that happens while
    a key redraws a view (its Strips are the new objects): a key then waited 0.2-0.3 s more for its screen,
    about one press in three. On a clock a pass meets a key seldom. The young generations are still
    collected as allocations come, so short-lived cycles still go at once.
    """
    before = gc.get_threshold()
    stop = threading.Event()

    def collect() -> None:
        last = time.monotonic()
        while not stop.wait(every):
            if _training.is_set() and time.monotonic() - last < while_training:
                continue
            gc.collect()
            last = time.monotonic()

    gc.set_threshold(before[0], before[1], _NEVER)
    thread = threading.Thread(target=collect, name="ptviz-gc", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        gc.set_threshold(*before)
