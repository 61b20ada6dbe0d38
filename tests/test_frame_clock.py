"""What keeps the cockpit cheap while training: frames paced by their cost, and a thread per worker."""

import threading

import pytest

from ptviz.tui.frame_clock import MAX_SECONDS, MIN_SECONDS, FrameClock
from ptviz.tui.threads import ThreadPerTask


class Node:
    """Stands in for the app: records the timers and after-refresh callbacks a FrameClock asks for."""

    def __init__(self):
        self.timers, self.after_refresh = [], []
        self.app = self
        self.is_running = True

    def set_timer(self, delay, callback):
        self.timers.append((delay, callback))

    def call_after_refresh(self, callback, *args):
        self.after_refresh.append((callback, args))


def test_no_frame_once_the_app_is_closing():
    """Closing takes the widgets down while the run's events still arrive: a frame due then draws nothing (one
    asked the Model tab for a pane already taken down, and the app ended with NoMatches)."""
    calls = []
    node = Node()
    clock = FrameClock(node, [lambda: calls.append("a") or True])
    clock.start()
    node.is_running = False
    node.timers[-1][1]()
    assert calls == [] and not node.after_refresh and len(node.timers) == 1  # and no next frame


def test_frames_slow_down_in_proportion_to_their_cost_within_bounds():
    """A frame that changed nothing checks again soon; an expensive one waits longer, never past the maximum."""
    calls = []
    node = Node()
    clock = FrameClock(node, [lambda: calls.append("a") or False, lambda: calls.append("b") or False])
    clock.start()
    assert node.timers[-1][0] == MIN_SECONDS
    node.timers[-1][1]()  # a tick: every step runs, nothing changed
    assert calls == ["a", "b"] and not node.after_refresh and node.timers[-1][0] == MIN_SECONDS

    clock.steps = [lambda: True]
    node.timers[-1][1]()
    callback, (start,) = node.after_refresh[-1]
    callback(start - 0.004)  # this frame cost 4 ms of the UI thread's time: 2% share -> 0.2 s
    assert node.timers[-1][0] == pytest.approx(0.2, abs=0.02) and clock.frames == 1
    callback(start - 1.0)  # a very expensive frame
    assert node.timers[-1][0] == MAX_SECONDS


def test_each_task_runs_on_a_thread_that_ends_with_it():
    """Results and exceptions come back through the future, and no thread outlives its task."""
    pool = ThreadPerTask()
    threads = []
    assert pool.submit(lambda: threads.append(threading.current_thread()) or 42).result(timeout=10) == 42
    with pytest.raises(ValueError):
        pool.submit(lambda: threads.append(threading.current_thread()) or int("boom")).result(timeout=10)
    assert len(threads) == 2 and threads[0] is not threads[1] and threads[0].name == "ptviz-worker"
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print)
