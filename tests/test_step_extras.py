"""Step rows' extra values (grad norms with train.clip_norm, a task's named metrics) through the run log's binary
copy and every history reader: load(), read_steps(), the Follower, resume's cut and the attached cockpit."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from cockpit_helpers import wait_for
from ptviz.engine.events import RunStarted, StepMetrics
from ptviz.engine.loop import train
from ptviz.engine.sinks import ListSink
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage import history, logrows, steplog
from ptviz.engine.storage.runlog import RunLog
from ptviz.tui.app import PtvizApp
from ptviz.tui.train.charts import ChartsPane, GradNormChart, NamedMetricChart
from task_files import EXAMPLES
from test_history import epoch_end, points


def regression_config(digits_config):
    """The regression example (its factory) with gradient clipping: 2 epochs of 8 steps, logged every 3."""
    config = digits_config.copy()
    config.data.task = f"{EXAMPLES / 'regression.py'}:make"
    config.data.batch_size = 128  # 8 steps an epoch
    config.train.epochs, config.train.log_interval, config.train.clip_norm = 2, 3, 0.5
    config.output.checkpoint_minutes = 0
    return config


def regression_run(digits_config):
    """(run folder, logged step events) of the clipping regression run."""
    sink = ListSink()
    train(regression_config(digits_config), sink)
    (run_dir,) = Path(digits_config.output.runs_dir).iterdir()
    return run_dir, sink.of(StepMetrics)


def flat(events, field, name=None):
    """Every step's value of a StepMetrics field (a named metric's with `name`)."""
    out = []
    for event in events:
        if isinstance(event, StepMetrics):
            out += list(getattr(event, field)[name] if name else getattr(event, field))
    return out


def test_a_clipping_task_run_reads_back_its_grad_norms_and_named_metrics_exactly(digits_config):
    """load(), read_steps(), the Follower and load()'s last step give back the very numbers the loop logged, from
    the binary copy and, without it, from the JSONL."""
    run_dir, logged = regression_run(digits_config)
    steps, norms, mae = flat(logged, "steps"), flat(logged, "grad_norms"), flat(logged, "metrics", "mae")
    assert len(steps) == 16 and len(norms) == 16 and len(mae) == 16 and all(v > 0 for v in norms + mae)
    assert steplog.read_steps_file(run_dir / "steps.bin").dtype.names[-2:] == ("grad_norm", "mae")

    def read_back():
        snap = history.load(run_dir, buckets=1000)
        records = history.read_steps(run_dir)
        followed = history.Follower(run_dir).poll()
        assert snap.series["grad_norm"].x.tolist() == steps and snap.series["mae"].x.tolist() == steps
        assert snap.series["grad_norm"].y.tolist() == norms and snap.series["mae"].y.tolist() == mae
        assert records["grad_norm"].tolist() == norms and records["mae"].tolist() == mae
        assert flat(followed, "grad_norms") == norms and flat(followed, "metrics", "mae") == mae
        assert snap.last.grad_norms == (norms[-1],) and snap.last.metrics == {"mae": (mae[-1],)}

    read_back()
    (run_dir / "steps.bin").unlink()  # the JSONL alone (a log written before the copy existed)
    read_back()


def test_the_jsonl_scanner_parses_extra_values_without_decoding_each_row(monkeypatch):
    """Step lines with a grad norm and named metrics go through the C parser: one line is decoded (to learn
    the keys), plus each non-step row; values, nulls and ends match the slow path's."""
    events = [points(1, 400, loss=lambda s: 1.0 / s), epoch_end(1, 400), points(401, 600, epoch=2)]
    rows = []
    for event in events:
        for row in logrows.rows_of(event, 1.5):
            if row["kind"] == "step":
                s = row["step"]
                row["grad_norm"] = None if s == 7 else s / 3
                row["mae"], row["r2"] = s * 0.25, 1 - 1 / s
            rows.append(row)
    data = logrows.encode(rows).encode()
    decoded = []
    real = logrows.decode_line
    monkeypatch.setattr(logrows, "decode_line", lambda line: decoded.append(line) or real(line))
    scanned = steplog.scan(data, 100)
    assert len(decoded) == 2  # the first step line and the epoch row
    monkeypatch.setattr(logrows, "decode_line", real)
    assert steplog.extras_of(scanned.steps) == ("grad_norm", "mae", "r2")
    s = scanned.steps
    assert s["step"].tolist() == list(range(1, 601))
    assert math.isnan(s["grad_norm"][6]) and s["grad_norm"][7] == 8 / 3 and s["mae"][599] == 150.0
    assert s["r2"].tolist() == [1 - 1 / k for k in range(1, 601)]
    assert s["end"][-1] == 100 + len(data)
    # Another key order on some lines (a resumed task naming its metrics differently): every line decoded.
    swapped = data.replace(b'"mae":150.0,"r2":', b'"r2":0.5,"mae":150.0,"x":', 1)
    assert swapped != data
    slow = steplog.scan(swapped, 100)
    assert slow.steps["mae"][599] == 150.0 and slow.steps["r2"][599] == 0.5
    assert steplog.extras_of(slow.steps) == ("grad_norm", "mae", "r2", "x")
    assert np.isnan(slow.steps["x"][:599]).all()


def test_rows_with_and_without_extras_read_nan_where_missing(tmp_path):
    """A log whose named metric starts part-way (a resume of a task run): the copy gains the column (rebuilt from
    the JSONL), earlier rows read NaN, and step events where a column has no value leave it out."""
    with RunLog(tmp_path, tensorboard=False) as log:
        log.emit(points(1, 10))
    assert steplog.read_steps_file(tmp_path / "steps.bin").dtype == steplog.STEP_DTYPE  # version 1 still written
    clipped = StepMetrics(steps=(11, 12), losses=(0.5, 0.4), lrs=(0.1, 0.1), epoch=1, epoch_step=12,
                          samples_per_s=10.0, elapsed=1.0, grad_norms=(2.5, float("inf")), metrics={"mae": (0.3, 0.2)})
    with RunLog(tmp_path, tensorboard=False, metrics=("mae",)) as log:  # a fresh RunLog keeps every complete row
        log.emit(clipped)
    header = (tmp_path / "steps.bin").read_bytes()[:60]
    assert header.startswith(b"ptvizstp\x02\x00\x00\x00") and b'["mae"]' in header
    records = history.read_steps(tmp_path)
    assert records["step"].tolist() == list(range(1, 13))
    assert np.isnan(records["mae"][:10]).all() and records["mae"][10:].tolist() == [0.3, 0.2]
    assert "grad_norm" not in records.dtype.names  # this RunLog was not told the run clips: the JSONL has them
    snap = history.load(tmp_path)
    assert snap.series["mae"].y[10:].tolist() == [0.3, 0.2]
    (followed,) = [e for e in history.Follower(tmp_path).poll() if isinstance(e, StepMetrics)]  # one epoch
    assert np.isnan(followed.metrics["mae"][:10]).all() and followed.metrics["mae"][10:] == (0.3, 0.2)
    assert np.isnan(followed.grad_norms[:10]).all() and followed.grad_norms[10] == 2.5
    assert math.isnan(followed.grad_norms[11])  # infinite: null in the JSONL
    (before, after) = [e for e in history.events_in_order(records[:10], np.empty(0, steplog.EVENT_DTYPE), [])
                       + history.events_in_order(records[10:], np.empty(0, steplog.EVENT_DTYPE), [])]
    assert before.metrics == {} and after.metrics == {"mae": (0.3, 0.2)}  # a column with no value here is left out


def test_a_version_1_copy_still_reads_and_one_missing_extras_is_passed_over(tmp_path):
    """A steps.bin of version 1 reads as before; one whose JSONL rows carry extra values (a run that clipped,
    logged before the copy held them) is read from the JSONL instead, so they are not lost, and a resume
    rebuilds it with them."""
    plain, clipped = tmp_path / "plain", tmp_path / "clipped"
    plain.mkdir()
    clipped.mkdir()
    with RunLog(plain, tensorboard=False) as log:
        log.emit(points(1, 50))
    assert (plain / "steps.bin").read_bytes()[8:12] == b"\x01\x00\x00\x00"
    assert history.LogRecords(plain).binary_steps.count == 50  # read through the copy
    assert history.read_steps(plain)["loss"].tolist() == [2.0 / s for s in range(1, 51)]
    mae = tuple(s / 10 for s in range(1, 51))
    with RunLog(clipped, tensorboard=False, metrics=("mae",)) as log:
        log.emit(dataclasses.replace(points(1, 50), metrics={"mae": mae}))
    # The copy as a version-1 writer left it: the fixed fields only, the same ends.
    fixed = history.read_steps(clipped)[list(steplog.STEP_DTYPE.names)]
    old_copy = steplog.steps_header() + np.ascontiguousarray(fixed, steplog.STEP_DTYPE).tobytes()
    (clipped / "steps.bin").write_bytes(old_copy)
    records = history.LogRecords(clipped)
    assert records.binary_steps.count == 0 and records.extras == ("mae",)
    assert history.load(clipped).series["mae"].y.tolist() == list(mae)
    with RunLog(clipped, tensorboard=False, metrics=("mae",)):
        pass
    assert history.LogRecords(clipped).binary_steps.count == 50
    assert history.read_steps(clipped)["mae"].tolist() == list(mae)


def test_resume_cuts_a_copy_with_extras_at_its_checkpoint(digits_config):
    """Resuming the clipping task run from its epoch-1 checkpoint keeps the copy's first 8 records byte for byte;
    the resumed steps' grad norms and metric follow them, as the JSONL holds them."""
    run_dir, _ = regression_run(digits_config)
    before = (run_dir / "steps.bin").read_bytes()
    extras = ("grad_norm", "mae")
    kept = len(steplog.steps_header(extras)) + 8 * steplog.step_dtype(extras).itemsize
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "epoch-0001.pt")
    assert history.checkpoint_cut(run_dir, state["save_id"], int(state["step"])).steps == 8
    config = regression_config(digits_config)
    config.train.max_steps = 12
    train(config, resume=state, run_dir=run_dir)
    assert (run_dir / "steps.bin").read_bytes()[:kept] == before[:kept]
    rows = [r for r in logrows.read_rows(run_dir / "metrics.jsonl") if r["kind"] == "step"]
    records = history.read_steps(run_dir)
    assert records["step"].tolist() == [r["step"] for r in rows] == list(range(1, 13))
    assert records["grad_norm"].tolist() == [r["grad_norm"] for r in rows]
    assert records["mae"].tolist() == [r["mae"] for r in rows]


async def test_attaching_to_a_task_run_charts_its_named_metric_and_grad_norm(tmp_path, digits_config):
    """The attached cockpit's mae and grad-norm charts hold the logged points, and rows logged later follow."""
    run = tmp_path / "run"
    run.mkdir()
    config = digits_config.copy()
    config.train.clip_norm = 1.0
    started = RunStarted(config=config.to_dict(), run_dir=str(run), device="cpu", device_name="cpu",
                         params_total=10, params_trainable=10, train_size=100, val_size=0, test_size=10,
                         steps_per_epoch=50, total_steps=100, epochs=2, class_names=(), input_shape=(1,),
                         resident=True, task_kind="regression", metrics=("mae",), task="regression")

    def step_event(first, last, epoch):
        steps = tuple(range(first, last + 1))
        return StepMetrics(steps=steps, losses=tuple(1 / s for s in steps), lrs=(0.1,) * len(steps), epoch=epoch,
                           epoch_step=last, samples_per_s=100.0, elapsed=1.0, grad_norms=tuple(s / 7 for s in steps),
                           metrics={"mae": tuple(s / 100 for s in steps)})

    log = RunLog(run, tensorboard=False, metrics=("mae",), train=config.train)
    for event in (started, step_event(1, 50, 1), epoch_end(1, 50), step_event(51, 80, 2)):
        log.emit(event)
    app = PtvizApp(digits_config.copy(), attach=run)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            charts = app.query_one(ChartsPane)
            await wait_for(pilot, lambda: app.runner.follower is not None, what="the history")
            await wait_for(pilot, lambda: len(app.query(NamedMetricChart)) == 1, what="the mae chart")
            mae = charts.history.metric("mae").step
            assert mae.x.tolist() == list(range(1, 81)) and mae.y.tolist() == pytest.approx([s / 100 for s in
                                                                                               range(1, 81)])
            assert charts.history.grad_norm.y.tolist() == pytest.approx([s / 7 for s in range(1, 81)])
            assert app.query_one(NamedMetricChart).metric == "mae"
            assert not app.query_one(GradNormChart).has_class("-absent")
            log.emit(step_event(81, 90, 2))
            await wait_for(pilot, lambda: len(mae) == 90, what="rows logged after attaching")
            assert mae.y[-1] == pytest.approx(0.9) and charts.history.grad_norm.x[-1] == 90
    finally:
        log.close()


def test_a_metric_first_seen_in_the_log_keeps_the_chart_layout_whole():
    """A named metric RunStarted did not name gets its chart; the layout keeps saying whether the run clips."""
    from ptviz.tui.train.charts import RunHistory

    charts = RunHistory()
    charts.clip_norm = 1.0
    charts.metric("mae")
    assert charts.layout == (True, ("mae",), True)


def test_a_task_metric_may_not_take_the_grad_norm_or_end_column():
    """Step rows and their binary copy hold these already: a task metric of that name would overwrite them."""
    import torch

    from ptviz.engine.errors import TaskError
    from ptviz.engine.tasks.contract import check_names

    for name in ("grad_norm", "end"):
        with pytest.raises(TaskError, match="taken by ptviz"):
            check_names({name: torch.tensor(1.0)}, "loss()")


def test_a_step_row_with_a_key_named_like_a_record_field_reads_without_it():
    """A hand-edited or foreign row with an "end" key cannot clash with the record's own field."""
    line = b'{"kind":"step","step":1,"epoch":1,"epoch_step":1,"loss":0.5,"lr":0.1,"elapsed":1.0,' \
           b'"samples_per_s":2.0,"wall":3.0,"end":7,"mae":0.25}\n'
    scanned = steplog.scan(line * 3, 0)
    assert steplog.extras_of(scanned.steps) == ("mae",) and scanned.steps["end"].tolist() == [len(line) * k
                                                                                               for k in (1, 2, 3)]
