"""What keeps the cockpit cheap while training: frames paced by their cost, and a thread per worker."""

import threading

import pytest

from ptviz.tui.frame_clock import MAX_HEAVY_SECONDS, MAX_SECONDS, MIN_SECONDS, PACE_SECONDS, FrameClock
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
    """A frame that changed nothing checks again soon; one that drew waits at least PACE_SECONDS, an expensive one
    longer, never past the maximum."""
    calls = []
    node = Node()
    clock = FrameClock(node, [lambda: calls.append("a") or False, lambda: calls.append("b") or False])
    clock.start()
    assert node.timers[-1][0] == MIN_SECONDS
    node.timers[-1][1]()  # a tick: every step runs, nothing changed
    assert calls == ["a", "b"] and not node.after_refresh and node.timers[-1][0] == MIN_SECONDS

    clock.steps = [lambda: True]
    node.timers[-1][1]()
    callback, (start, heavy_at) = node.after_refresh[-1]
    assert heavy_at is None  # no heavy steps ran
    callback(start - 0.004)  # this frame cost 4 ms of the UI thread's time: 2% share -> 0.2 s, paced to 0.5 s
    assert node.timers[-1][0] == PACE_SECONDS and clock.frames == 1
    callback(start - 0.016)  # 16 ms: 0.8 s
    assert node.timers[-1][0] == pytest.approx(0.8, abs=0.02)
    callback(start - 1.0)  # a very expensive frame
    assert node.timers[-1][0] == MAX_SECONDS


def paint(node, cost):
    """Run the last frame's after-paint callback as if that frame took `cost` seconds of CPU."""
    callback, (start, heavy_at) = node.after_refresh[-1]
    callback(start - cost, heavy_at)


def test_heavy_steps_wait_in_proportion_to_their_frame_s_cost_and_only_run_when_they_change_something():
    """The charts (heavy) run with the first frame after they are due, 100x their frame's cost later (a 1% share),
    never more than MAX_HEAVY_SECONDS; the light steps keep their own pace meanwhile. A heavy step that has nothing
    new to draw makes no frame."""
    calls, clock_now = [], [100.0]
    node = Node()
    charts_changed = [True]
    clock = FrameClock(node, [lambda: calls.append("status") or True],
                       heavy=[lambda: calls.append("charts") or charts_changed[0]], now=lambda: clock_now[0])
    clock.start()
    node.timers[-1][1]()
    assert calls == ["status", "charts"]
    callback, (start, heavy_at) = node.after_refresh[-1]
    assert heavy_at == 100.0
    callback(start - 0.020, heavy_at)  # the frame with the charts cost 20 ms: the charts are due 2 s later
    assert clock.heavy_due == pytest.approx(102.0, abs=0.01) and node.timers[-1][0] == MAX_SECONDS

    calls.clear()
    clock_now[0] = 101.0
    node.timers[-1][1]()  # a light frame: the charts are not due
    assert calls == ["status"] and node.after_refresh[-1][1][1] is None
    paint(node, 0.002)
    assert clock.heavy_due == pytest.approx(102.0, abs=0.01) and node.timers[-1][0] == PACE_SECONDS

    calls.clear()
    clock_now[0] = 102.5
    node.timers[-1][1]()
    assert calls == ["status", "charts"]
    paint(node, 1.0)  # a very expensive chart frame
    assert clock.heavy_due == pytest.approx(102.5 + MAX_HEAVY_SECONDS, abs=0.01)

    clock.steps, charts_changed[0] = [lambda: False], False
    clock_now[0] = 200.0
    frames = len(node.after_refresh)
    node.timers[-1][1]()  # due, but no chart had new points: no frame, and nothing is due later
    assert len(node.after_refresh) == frames and node.timers[-1][0] == MIN_SECONDS


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
