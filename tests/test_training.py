"""The training loop on CPU: the default recipe's accuracy, and commands at exact step boundaries."""

import asyncio

import pytest

from ptviz.engine.commands import EvaluateNow, Pause, Resume, SaveCheckpoint, ScaleLearningRate, SetLearningRate, Stop
from ptviz.engine.events import (
    CheckpointSaved,
    EpochEnded,
    Evaluated,
    LrChanged,
    Notice,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from ptviz.engine.loop import train
from ptviz.engine.session import TrainingSession
from ptviz.engine.sinks import ListSink


def test_default_recipe_reaches_95_percent_on_digits_in_10_epochs(digits_config):
    """The embedded default trains to >= 95% test accuracy within its 10 epochs, on CPU."""
    sink = ListSink()
    finished = train(digits_config, sink)
    epochs = sink.of(EpochEnded)
    assert len(epochs) == 10 and finished.stopped is False
    assert max(e.test_accuracy for e in epochs) >= 0.95
    assert epochs[-1].test_accuracy >= 0.95
    assert epochs[-1].train_loss < epochs[0].train_loss / 5
    steps = [s for m in sink.of(StepMetrics) for s in m.steps]
    assert steps == list(range(1, finished.step + 1))  # one loss per step, none lost or repeated
    started = sink.of(RunStarted)[0]
    assert (started.train_size, started.test_size, started.params_total) == (1438, 359, 167_178)


def test_same_seed_same_losses(digits_config):
    digits_config.train.max_steps = 30
    digits_config.data.transforms = [__import__("ptviz.engine.transform_specs").engine.transform_specs.parse_spec(
        "RandomRotation(10)")]
    runs = []
    for _ in range(2):
        sink = ListSink()
        train(digits_config, sink)
        runs.append([v for m in sink.of(StepMetrics) for v in m.losses])
    assert runs[0] == runs[1] and len(runs[0]) == 30


def long_config(config):
    config.train.epochs = 1000  # far more than a test lets run: only commands end it
    config.train.log_interval = 1
    return config


async def test_pause_freezes_the_step_counter_and_resume_continues(digits_config):
    session = TrainingSession(long_config(digits_config))
    session.start()
    first = await session.next_event(StepMetrics)
    session.send(Pause())
    paused = await session.next_event(Paused)
    assert paused.step >= first.last_step
    # While paused the loop still answers commands; each reports the same step.
    for _ in range(3):
        session.send(EvaluateNow())
        assert (await session.next_event(Evaluated)).step == paused.step
    session.send(SaveCheckpoint())
    assert (await session.next_event(CheckpointSaved)).step == paused.step
    session.send(Resume())
    resumed = await session.next_event(Resumed)
    assert resumed.step == paused.step
    after = await session.next_event(StepMetrics)
    assert after.steps[0] == paused.step + 1
    session.send(Pause())
    second = await session.next_event(Paused)
    session.send(Stop())
    finished = await session.next_event(RunFinished)
    assert finished.stopped and finished.step == second.step
    assert session.stop(timeout=10)


async def test_stop_ends_within_one_step(digits_config):
    config = long_config(digits_config)
    sink = ListSink()
    session = TrainingSession(config)

    class StopAtTen:
        """Runs on the training thread: asks for a stop as soon as step 10 is read."""

        def emit(self, event):
            sink.emit(event)
            if isinstance(event, StepMetrics) and event.last_step >= 10:
                session.control.stop()

    session.extra_sink = StopAtTen()
    session.start()
    finished = await session.next_event(RunFinished)
    last_read = next(m for m in sink.of(StepMetrics) if m.last_step >= 10).last_step
    assert finished.stopped and finished.step == last_read


async def test_set_lr_applies_from_the_next_step(digits_config):
    session = TrainingSession(long_config(digits_config))
    session.start()
    await session.next_event(StepMetrics)
    session.send(SetLearningRate(0.123))
    changed = await session.next_event(LrChanged)
    assert changed.lr == pytest.approx(0.123)
    points = {}
    while max(points, default=0) < changed.step + 5:
        m = await session.next_event(StepMetrics)
        points.update(zip(m.steps, m.lrs))
    assert points[changed.step + 1] == pytest.approx(0.123)
    assert all(lr == pytest.approx(0.123) for s, lr in points.items() if s > changed.step)
    if changed.step in points:
        assert points[changed.step] == pytest.approx(0.05)
    session.send(ScaleLearningRate(0.5))
    assert (await session.next_event(LrChanged)).lr == pytest.approx(0.0615)
    session.send(SetLearningRate(-1.0))
    notice = await session.next_event(Notice)
    assert "learning rate not changed" in notice.text
    assert session.stop(timeout=10)


async def test_evaluate_now_reports_test_metrics_mid_epoch(digits_config):
    session = TrainingSession(long_config(digits_config))
    session.start()
    started = await session.next_event(RunStarted)
    await session.next_event(StepMetrics)
    session.send(Pause())
    paused = await session.next_event(Paused)
    for _ in range(50):  # a pause queued during an epoch's evaluation lands on its end: step on into the next
        if paused.step % started.steps_per_epoch:
            break
        session.send(Resume())
        await session.next_event(Resumed)
        session.send(Pause())
        paused = await session.next_event(Paused)
    session.send(EvaluateNow())
    result = await session.next_event(Evaluated)
    while not result.mid_epoch:  # the end-of-epoch evaluation from before the pause
        result = await session.next_event(Evaluated)
    assert result.split == "test" and result.samples == started.test_size
    assert result.step == paused.step and result.step % started.steps_per_epoch != 0
    assert sum(map(sum, result.confusion)) == started.test_size
    assert 0.0 <= result.accuracy <= 1.0
    assert session.stop(timeout=10)


async def test_events_arrive_without_blocking_the_training_thread(digits_config):
    """A consumer that reads nothing does not slow or stall training: events queue up instead."""
    digits_config.train.epochs = 2
    session = TrainingSession(digits_config)
    session.start()
    await asyncio.to_thread(session.thread.join, 60)
    assert not session.alive
    kinds = [type(e) for e in [session.queue.get_nowait() for _ in range(session.queue.qsize())]]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished and kinds.count(EpochEnded) == 2


def test_evaluate_now_paused_right_after_an_epoch_names_that_epoch_everywhere(digits_config, tmp_path):
    """Pause and evaluate-now queued as epoch 1 ends are applied at the first boundary of epoch 2, before any of its
    steps: the evaluation belongs to epoch 1 (1-based) in the event, the log row and line, `send status` and
    `runs`, as the status line's epoch does."""
    import json

    from ptviz.engine.commands import Control
    from ptviz.engine.remote import ControlServer
    from ptviz.engine.storage.catalog import read_record
    from ptviz.tui.headless import event_line

    digits_config.train.epochs = 3
    control = Control()

    class AtTheEpochsEnd(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, EpochEnded) and event.epoch == 1:
                control.send(Pause())
                control.send(EvaluateNow())
            if isinstance(event, Evaluated) and event.mid_epoch:
                control.send(Stop())

    sink = AtTheEpochsEnd()
    finished = train(digits_config, sink, control, listen=False)
    (ended,) = sink.of(EpochEnded)
    (now,) = [e for e in sink.of(Evaluated) if e.mid_epoch]
    assert now.step == ended.step == finished.step == sink.of(Paused)[0].step  # no step of epoch 2 ran
    assert now.epoch == ended.epoch == sink.of(StepMetrics)[-1].epoch == finished.epoch == 1
    assert "at step 45 (epoch 1)" in event_line(now)
    (run,) = (tmp_path / "runs").iterdir()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if r["kind"] == "eval" and r.get("mid_epoch")] == [1]
    assert read_record(run).epoch == 1
    (tmp_path / "status").mkdir()
    server = ControlServer(tmp_path / "status", Control())
    try:
        for event in sink.events:
            server.emit(event)
        assert server.status["epoch"] == server.status["last_evaluation"]["epoch"] == 1
    finally:
        server.close()
