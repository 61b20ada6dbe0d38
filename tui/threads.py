"""A fresh thread for every worker, so the OpenMP threads torch starts for a job end with that job.

Textual runs thread workers on the event loop's default executor, a pool whose threads outlive their jobs.
Each thread that runs a parallel torch operation keeps a team of OpenMP threads; once a data preview's team
and the training's team are both alive, OpenMP has more threads than cores and stops spinning between
operations, and CPU training in the cockpit ran about 2.5× slower than headless (2 cores, 2 torch threads).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor


class ThreadPerTask(ThreadPoolExecutor):
    """An executor that runs each submitted call on a new thread, which ends when the call returns.

    A ThreadPoolExecutor only by type, because asyncio accepts nothing else as the default executor.
    """

    def __init__(self, name: str = "ptviz-worker", join_on_shutdown: bool = True):
        super().__init__(max_workers=1, thread_name_prefix=name)  # the pool itself never starts a thread
        self.name = name
        self.join_on_shutdown = join_on_shutdown  # False: shutdown leaves running calls to end on their own
        self._running: set[threading.Thread] = set()
        self._guard = threading.Lock()
        self._closed = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Start `fn(*args, **kwargs)` on its own thread; the future holds its result or exception."""
        future: Future = Future()
        with self._guard:
            if self._closed:
                raise RuntimeError("cannot start a worker after shutdown")

            def run() -> None:
                try:
                    if future.set_running_or_notify_cancel():
                        try:
                            result = fn(*args, **kwargs)
                        except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                            future.set_exception(exc)
                        else:
                            future.set_result(result)
                finally:
                    with self._guard:
                        self._running.discard(threading.current_thread())

            thread = threading.Thread(target=run, name=self.name, daemon=not self.join_on_shutdown)
            self._running.add(thread)
        thread.start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new calls and, with `wait` (and join_on_shutdown), join the threads still running."""
        with self._guard:
            self._closed = True
            running = list(self._running)
        super().shutdown(wait=False)
        if wait and self.join_on_shutdown:
            for thread in running:
                thread.join()
