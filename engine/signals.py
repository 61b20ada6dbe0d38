"""SIGINT, SIGTERM and SIGHUP become "checkpoint at the next step boundary, then stop".

Handlers run in the main thread and only set flags (Control.request_checkpoint_and_stop), so they are
safe whichever thread trains. A second SIGINT raises KeyboardInterrupt for when a step never ends.
Signals that were ignored when the handlers were installed stay ignored.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .commands import Control

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def install_stop_handlers(control: Control, received: list[int] | None = None) -> Callable[[], None]:
    """Install the handlers (main thread only); returns a function that puts the previous ones back.

    Each signal number received is appended to `received`, so the caller can exit with 128 + its number.
    """
    received = [] if received is None else received

    def handler(signum: int, frame: object) -> None:
        if signum == signal.SIGINT and signal.SIGINT in received:
            raise KeyboardInterrupt
        received.append(signum)
        control.request_checkpoint_and_stop(f"received {signal.Signals(signum).name}")

    # A signal ignored when we started stays ignored: `nohup` ignores SIGHUP, `cmd &` ignores SIGINT.
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS if signal.getsignal(sig) is not signal.SIG_IGN}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


@contextmanager
def checkpoint_on_signals(control: Control) -> Iterator[list[int]]:
    """While inside, stop signals checkpoint and stop the run; yields the list of signals received."""
    received: list[int] = []
    restore = install_stop_handlers(control, received)
    try:
        yield received
    finally:
        restore()
