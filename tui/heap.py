"""Keep the garbage collector's full passes short: what start-up imported is taken out of their way."""

from __future__ import annotations

import gc


def freeze_imported() -> None:
    """Move every object alive now out of the collector's generations, for good.

    With torch, torchvision and Textual imported a full collection walks ~650k objects: about 1 s on a loaded
    2-core CPU, taken on the UI thread whenever enough new objects have survived (a zoom, a tab switch), so a
    key waited that long for its screen. Modules, classes and functions live as long as the process anyway;
    frozen (gc.freeze), the full passes walk only what the cockpit made since, a few hundred thousand
    objects fewer.
    """
    gc.freeze()
