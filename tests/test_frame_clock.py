"""What keeps the cockpit cheap while training: frames paced by their cost, and a thread per worker."""

import threading

import pytest

from ptviz.tui.frame_clock import MAX_HEAVY_SECONDS, MAX_SECONDS, MIN_SECONDS, PACE_SECONDS, FrameClock
from ptviz.tui.threads import ThreadPerTask


class Node:
    """Stands in for the app: records the timers a FrameClock asks for."""

    def __init__(self):
        self.timers = []
        self.app = self
        self.is_running = True

    def set_timer(self, delay, callback):
        self.timers.append((delay, callback))


class Clocks:
    """A wall clock and a CPU clock the test moves by hand."""

    def __init__(self):
        self.wall, self.used = 100.0, 0.0

    def tick(self, node, wall: float, cpu: float) -> None:
        """Let `wall` seconds pass, `cpu` of them spent by the UI thread (painting, handlers), then the timer fires."""
        self.wall += wall
        self.used += cpu
        node.timers[-1][1]()


def test_no_frame_once_the_app_is_closing():
    """Closing takes the widgets down while the run's events still arrive: a frame due then draws nothing (one
    asked the Model tab for a pane already taken down, and the app ended with NoMatches)."""
    calls = []
    node = Node()
    clock = FrameClock(node, [lambda: calls.append("a") or True])
    clock.start()
    node.is_running = False
    node.timers[-1][1]()
    assert calls == [] and len(node.timers) == 1  # and no next frame


def test_frames_slow_down_in_proportion_to_the_ui_s_cpu_time_within_bounds():
    """A clock that found nothing to draw looks again soon; frames that draw come at least PACE_SECONDS apart,
    further when the UI thread spent more than FRAME_SHARE of the time since the last frame (its paint and
    every handler count), never past the maximum."""
    calls, clocks, node = [], Clocks(), Node()
    clock = FrameClock(node, [lambda: calls.append("a") or False, lambda: calls.append("b") or False],
                       now=lambda: clocks.wall, cpu=lambda: clocks.used)
    clock.start()
    assert node.timers[-1][0] == MIN_SECONDS
    clocks.tick(node, 0.1, 0.0)  # every step runs, nothing changed
    assert calls == ["a", "b"] and node.timers[-1][0] == MIN_SECONDS

    clock.steps = [lambda: True]
    clocks.tick(node, 0.1, 0.0)
    assert node.timers[-1][0] == PACE_SECONDS and clock.frames == 1
    clocks.tick(node, 0.5, 0.004)  # 4 ms since the last frame: 2% -> 0.2 s, paced to 0.5 s
    assert node.timers[-1][0] == PACE_SECONDS
    clocks.tick(node, 0.5, 0.016)  # 16 ms: 0.8 s
    assert node.timers[-1][0] == pytest.approx(0.8, abs=0.01) and clock.busy == pytest.approx(0.020)
    clocks.tick(node, 0.8, 1.0)  # a very expensive stretch
    assert node.timers[-1][0] == MAX_SECONDS


def test_heavy_steps_wait_in_proportion_to_their_frame_s_cost_and_only_run_when_they_change_something():
    """The charts (heavy) run with the first frame after they are due: 100x the UI's CPU time from their frame to
    the next (their paint) later (a 1% share), never more than MAX_HEAVY_SECONDS; the light steps keep their own
    pace meanwhile. A heavy step that has nothing new to draw makes no frame."""
    calls, clocks, node = [], Clocks(), Node()
    charts_changed = [True]
    clock = FrameClock(node, [lambda: calls.append("status") or True],
                       heavy=[lambda: calls.append("charts") or charts_changed[0]], now=lambda: clocks.wall,
                       cpu=lambda: clocks.used)
    clock.start()
    clocks.tick(node, 0.1, 0.0)
    assert calls == ["status", "charts"]
    calls.clear()
    clocks.tick(node, 0.5, 0.020)  # the charts' frame and its paint cost 20 ms: due 2 s after that frame
    assert clock.heavy_due == pytest.approx(100.1 + 2.0, abs=0.01) and calls == ["status"]
    assert node.timers[-1][0] == pytest.approx(1.0, abs=0.01)  # 20 ms in the last interval: 1 s

    calls.clear()
    clocks.tick(node, 1.0, 0.002)
    assert calls == ["status"] and node.timers[-1][0] == PACE_SECONDS  # not due yet
    clocks.tick(node, 0.5, 0.002)
    assert calls == ["status", "status", "charts"]  # wall 102.1: due
    clocks.tick(node, 0.5, 1.0)  # a very expensive chart frame
    assert clock.heavy_due == pytest.approx(102.1 + MAX_HEAVY_SECONDS, abs=0.01)

    clock.steps, charts_changed[0] = [lambda: False], False
    clocks.wall = 200.0
    frames = clock.frames
    clocks.tick(node, 0.0, 0.0)  # due, but no chart had new points: no frame
    assert clock.frames == frames and node.timers[-1][0] == MIN_SECONDS


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
