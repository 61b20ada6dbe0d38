"""Keep the garbage collector's full passes off the keys: what start-up imported is taken out of their way, and
they run on a clock rather than when allocations pile up."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FULL_PASS_SECONDS = 30.0  # cyclic garbage lives at most this long; a pass costs 0.1-0.3 s on a loaded 2-core CPU
_NEVER = 2**31 - 1  # a threshold the count of young collections never reaches


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
def full_passes_on_a_clock(every: float = FULL_PASS_SECONDS) -> Iterator[None]:
    """Run the collector's full passes every `every` seconds, on a thread of their own, while the block runs.

    Python starts a full pass once enough new objects have survived, and in the cockpit that happens while
    a key redraws a view (its Strips are the new objects): a key then waited 0.2-0.3 s more for its screen,
    about one press in three. On a clock a pass meets a key seldom. The young generations are still
    collected as allocations come, so short-lived cycles still go at once.
    """
    before = gc.get_threshold()
    stop = threading.Event()

    def collect() -> None:
        while not stop.wait(every):
            gc.collect()

    gc.set_threshold(before[0], before[1], _NEVER)
    thread = threading.Thread(target=collect, name="ptviz-gc", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        gc.set_threshold(*before)
