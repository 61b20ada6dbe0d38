"""Stop signals in the cockpit: SIGHUP (the SSH connection went), SIGTERM and SIGINT keep the work.

The handlers run in the main thread between bytecodes, even while the UI is stuck writing to a terminal
that has gone, and only set flags: the training loop saves last.pt at its next step boundary.
"""

from __future__ import annotations

import os
import signal
import threading

HANGUP_EXIT_TIMEOUT = 120.0  # seconds to wait for the checkpoint before leaving anyway


def install_stop_signals(app) -> None:
    """Route SIGHUP, SIGTERM and SIGINT to a checkpoint-then-exit; signals ignored at start stay ignored."""
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # e.g. nohup's SIGHUP
            signal.signal(sig, lambda signum, _frame: _on_stop_signal(app, signum))


def _on_stop_signal(app, sig: int) -> None:
    app.signalled = sig
    runner = app.runner
    if not runner.remote_run:
        runner.request_checkpoint_and_stop(f"received {signal.Signals(sig).name}")
    if sig == signal.SIGHUP:
        # The terminal is gone, so Textual can never restore it: wait for the checkpoint, then leave.
        threading.Thread(target=_exit_when_saved, args=(runner, sig), name="ptviz-hangup", daemon=True).start()
    else:
        app.call_later(app.stop_and_exit)


def _exit_when_saved(runner, sig: int) -> None:
    if not runner.remote_run:
        runner.join(timeout=HANGUP_EXIT_TIMEOUT)
    os._exit(128 + sig)
