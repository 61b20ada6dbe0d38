"""Training options on CPU: accumulation, clipping, warm-up, weight averaging and early stopping do what they
promise, compose with autocast and the GradScaler, and resume bit-for-bit."""

import json
from pathlib import Path

import pytest
import torch

from ptviz.engine import config as cfgmod
from ptviz.engine.commands import Control, SetLearningRate
from ptviz.engine.errors import ConfigError
from ptviz.engine.evaluate import evaluate
from ptviz.engine.events import (
    EpochEnded,
    Evaluated,
    LrChanged,
    Notice,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from ptviz.engine.loop import Trainer, train
from ptviz.engine.models.registry import build_model
from ptviz.engine.setup import build
from ptviz.engine.sinks import ListSink
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage.logrows import read_rows
from ptviz.engine.storage.history import Follower
from ptviz.engine.train_options.accumulate import Accumulation
from ptviz.engine.train_options.clipping import GradClipper
from ptviz.engine.train_options.early_stop import EarlyStopping
from ptviz.tui.cli import build_parser, config_from_args, main

DIGITS_TRAIN = 1438  # training images of the embedded digits


def plain_sgd(config, batch_size=64, accumulate=1, write=False, **train):
    """digits-mlp with plain SGD (no momentum: an update is lr times the gradient); a run folder if `write`."""
    if not write:
        config.output.runs_dir = ""
    config.output.checkpoint_minutes = 0
    config.optim.optimizer, config.optim.lr = "sgd", 0.1
    config.data.batch_size = batch_size
    config.train.accumulate = accumulate
    config.train.log_interval = 1
    for name, value in train.items():
        section = "optim" if name == "warmup_steps" else "train"
        cfgmod.set_value(config, f"{section}.{name}", value)
        assert cfgmod.check_field(f"{section}.{name}", value) is None
    return config


def run(config, setup=None):
    """Train in this thread; the trainer (its model, weight average, ...) and every event it emitted."""
    sink = ListSink()
    trainer = Trainer(setup or build(config), sink, Control())
    trainer.run()
    return trainer, sink


def weights(trainer):
    return {k: v.clone() for k, v in trainer.s.model.state_dict().items()}


def steps_of(sink):
    return [s for m in sink.of(StepMetrics) for s in m.steps]


def values(sink, field):
    return [v for m in sink.of(StepMetrics) for v in getattr(m, field)]


# ----------------------------------------------------------------------------- accumulation


def test_four_batches_of_16_make_the_update_one_batch_of_64_makes(digits_config):
    """A whole epoch: 90 batches of 16 in 23 groups (the last one of 2 batches, 16 + 14 images) against
    23 batches of 64 (the last of 30) in the same order."""
    big_t, big = run(plain_sgd(digits_config.copy(), batch_size=64, epochs=1))
    small_t, small = run(plain_sgd(digits_config.copy(), batch_size=16, accumulate=4, epochs=1))
    assert small.of(RunStarted)[0].steps_per_epoch == big.of(RunStarted)[0].steps_per_epoch == 23
    assert steps_of(small) == steps_of(big) == list(range(1, 24))
    for name, tensor in weights(big_t).items():
        torch.testing.assert_close(weights(small_t)[name], tensor, rtol=1e-4, atol=1e-5)
    # A step's logged loss is the mean over its samples, as the one big batch reports it.
    assert values(small, "losses") == pytest.approx(values(big, "losses"), rel=1e-5)
    # Training accuracy counts every image once either way.
    assert small.of(EpochEnded)[0].train_accuracy == pytest.approx(big.of(EpochEnded)[0].train_accuracy, abs=1e-3)


def test_accumulation_counts_optimizer_steps(digits_config):
    """max_steps, the step counter, epoch_step and log rows count optimizer steps, not batches."""
    config = plain_sgd(digits_config, batch_size=64, accumulate=5, epochs=2, write=True)  # groups of 5, 5, 5, 5, 3
    sink = ListSink()
    train(config, sink)
    started = sink.of(RunStarted)[0]
    assert (started.steps_per_epoch, started.total_steps) == (5, 10)
    assert steps_of(sink) == list(range(1, 11))
    assert [e.step for e in sink.of(EpochEnded)] == [5, 10]
    (run_dir,) = Path(config.output.runs_dir).iterdir()
    rows = [r for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "step"]
    assert [(r["epoch"], r["epoch_step"]) for r in rows] == [(e, s) for e in (1, 2) for s in range(1, 6)]
    config.train.max_steps, config.train.epochs, config.output.runs_dir = 7, 10, ""
    trainer, sink = run(config)
    finished = sink.of(RunFinished)[0]
    assert (finished.step, trainer.epoch, trainer.batch_in_epoch) == (7, 1, 10)  # step 7 is batch 10 of epoch 2


def test_accumulate_unit_groups_and_weights():
    """The epoch's last group of 64 + 64 + 30 images: each mean loss weighted by size / 64, the sum by 64 / 158,
    so image i counts 1/158 as in one batch of 158."""
    acc = Accumulation(4)
    weights = []
    for n in (64, 64, 30):
        weights.append(acc.weight(n))
        acc.added(n)
    assert weights == [None, None, pytest.approx(30 / 64)] and acc.open and not acc.full
    assert acc.grad_factor() == pytest.approx(64 / 158)
    acc.stepped()
    assert acc.weight(30) is None  # a group of one batch is left exactly as it was
    acc.added(30)
    assert acc.grad_factor() is None
    assert (acc.steps_per_epoch(23), acc.steps_per_epoch(None), acc.steps_done(9)) == (6, None, 3)


# ----------------------------------------------------------------------------- clipping


def test_clipper_caps_the_global_norm_and_returns_the_norm_before():
    a, b, frozen = (torch.nn.Parameter(torch.zeros(2)) for _ in range(3))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 4.0])  # global norm 5; frozen has no gradient
    norm = GradClipper([a, b, frozen], 0.5).clip()
    assert isinstance(norm, torch.Tensor) and norm.item() == pytest.approx(5.0)
    assert torch.linalg.vector_norm(torch.cat([a.grad, b.grad])).item() == pytest.approx(0.5, rel=1e-5)
    assert GradClipper([a, b], 10.0).clip().item() == pytest.approx(0.5, rel=1e-5)  # under the cap: untouched


def test_clipping_caps_each_update_and_logs_the_norm_it_had(digits_config):
    """Plain SGD: a step moves the weights by lr times the gradient, so |update| / lr is the norm it used."""
    base = plain_sgd(digits_config.copy(), max_steps=1)
    before = weights(Trainer(build(base), ListSink(), Control()))
    free_t, free = run(base)
    free_norm = _update_norm(before, weights(free_t)) / base.optim.lr
    assert free_norm > 0.2  # the cap below bites
    capped_t, capped = run(plain_sgd(digits_config.copy(), max_steps=1, clip_norm=0.2))
    assert _update_norm(before, weights(capped_t)) / 0.1 == pytest.approx(0.2, rel=1e-4)
    assert values(capped, "grad_norms") == pytest.approx([free_norm], rel=1e-4)  # the norm before clipping
    assert values(free, "grad_norms") == []  # not tracked without clipping


def _update_norm(before, after):
    return torch.linalg.vector_norm(torch.cat([(after[k] - before[k]).flatten() for k in before])).item()


def test_grad_norms_reach_the_log_csv_and_read_back(digits_config):
    config = plain_sgd(digits_config, epochs=1, clip_norm=1.0, write=True)
    sink = ListSink()
    train(config, sink)
    (run_dir,) = Path(config.output.runs_dir).iterdir()
    norms = values(sink, "grad_norms")
    assert len(norms) == 23 and all(v > 0 for v in norms)
    rows = [r for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "step"]
    assert [r["grad_norm"] for r in rows] == norms
    back = [v for e in Follower(run_dir).poll() if isinstance(e, StepMetrics) for v in e.grad_norms]
    assert back == norms  # what a resumed or attached cockpit charts
    header, *lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert header.endswith(",test_acc,grad_norm")
    assert [float(line.split(",")[-1]) for line in lines if line.split(",")[3]] == norms


def test_clipping_under_a_grad_scaler_clips_the_unscaled_gradients(digits_config):
    """The fp16 path on CPU: the GradScaler multiplies the loss by 1024; the norm logged and the update are
    those of the true gradients, because the loop unscales before it clips."""
    config = plain_sgd(digits_config, max_steps=3, clip_norm=0.2)
    plain_t, plain = run(config)
    setup = build(config)
    setup.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaled_t, scaled = run(config, setup)
    assert values(scaled, "grad_norms") == pytest.approx(values(plain, "grad_norms"), rel=1e-4)
    for name, tensor in weights(plain_t).items():
        torch.testing.assert_close(weights(scaled_t)[name], tensor, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- warm-up


def test_warmup_lr_follows_its_ramp_step_by_step_then_the_schedule(digits_config):
    config = plain_sgd(digits_config, batch_size=128, epochs=3, warmup_steps=8)  # 12 steps an epoch
    config.optim.scheduler, config.optim.step_size, config.optim.gamma = "step", 1, 0.5
    _, sink = run(config)
    lrs = values(sink, "lrs")
    ramp = [0.1 * s / 8 for s in range(1, 9)]
    assert lrs[:8] == pytest.approx(ramp)
    assert lrs[8:12] == pytest.approx([0.1] * 4)  # the rest of epoch 1 at the scheduled rate
    assert lrs[12:24] == pytest.approx([0.05] * 12) and lrs[24:] == pytest.approx([0.025] * 12)


def test_warmup_against_a_plain_loop_step_by_step(digits_config):
    """The weights equal those of a hand-written loop that sets lr = base * s / W before each step."""
    config = plain_sgd(digits_config, batch_size=128, max_steps=5, warmup_steps=4)
    trainer, _ = run(config)
    setup = build(plain_sgd(digits_config.copy(), batch_size=128, max_steps=5))
    model, opt = setup.model, setup.optimizer
    for s, (x, y) in enumerate(setup.train.epoch(0), start=1):
        for group in opt.param_groups:
            group["lr"] = 0.1 * min(1.0, s / 4)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(setup.pipeline.train_batch(x, s - 1)), y).backward()
        opt.step()
        if s == 5:
            break
    for name, tensor in model.state_dict().items():
        assert torch.equal(weights(trainer)[name], tensor), name


def test_a_rate_set_during_warmup_is_the_ramps_target(digits_config, monkeypatch):
    from ptviz.engine import loop
    monkeypatch.setattr(loop, "READ_SECONDS", 0.0)  # every step's point is handed over: the rate is set inside
    monkeypatch.setattr(loop, "EMIT_SECONDS", 0.0)  # the warm-up however fast the machine is
    config = plain_sgd(digits_config, batch_size=128, epochs=2, warmup_steps=10)
    config.train.log_interval = 1
    sink = ListSink()
    control = Control()
    sent = []

    class SetAtStep3(ListSink):
        def emit(self, event):
            sink.emit(event)
            if isinstance(event, StepMetrics) and not sent:
                sent.append(event.last_step)
                control.send(SetLearningRate(0.4))

    Trainer(build(config), SetAtStep3(), control).run()
    (changed,) = sink.of(LrChanged)
    assert changed.lr == pytest.approx(0.4)  # the target, as `send set-lr` reports it
    assert any("ramps up to 0.4 by step 10" in n.text for n in sink.of(Notice))
    lrs = dict(zip(steps_of(sink), values(sink, "lrs")))
    for step in range(changed.step + 1, 11):
        assert lrs[step] == pytest.approx(0.4 * step / 10)
    assert lrs[11] == pytest.approx(0.4) and lrs[changed.step] == pytest.approx(0.1 * changed.step / 10)


def test_warmup_with_one_cycle_is_refused():
    config = cfgmod.RunConfig()
    config.optim.scheduler, config.optim.warmup_steps = "one-cycle", 100
    (error,) = cfgmod.validate(config)
    assert error.path == "optim.warmup_steps" and "one-cycle warms up by itself" in error.reason


# ----------------------------------------------------------------------------- weight average


def test_ema_weights_equal_the_formula_after_n_steps(digits_config):
    decay, n = 0.8, 6
    config = plain_sgd(digits_config, batch_size=128, max_steps=n, ema_decay=decay)
    config.optim.optimizer = "sgd-momentum"
    setup = build(config)
    trainer = Trainer(setup, ListSink(), Control())
    expected = {k: v.double() for k, v in weights(trainer).items()}  # the average starts at the initial weights
    history = []
    setup.optimizer.register_step_post_hook(lambda *_: history.append(weights(trainer)))
    trainer.run()
    assert len(history) == n
    for after in history:
        expected = {k: decay * e + (1 - decay) * after[k].double() for k, e in expected.items()}
    got = trainer.ema.state_dict()
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name].double(), tensor, rtol=1e-6, atol=1e-7)
    assert not torch.equal(got["fc1.weight"], history[-1]["fc1.weight"])  # an average, not the weights


def test_ema_is_evaluated_saved_and_picks_best(digits_config):
    config = digits_config
    config.train.epochs, config.train.ema_decay = 3, 0.9
    config.output.checkpoint_minutes = 0
    sink = ListSink()
    train(config, sink)
    (run_dir,) = Path(config.output.runs_dir).iterdir()
    epochs = sink.of(EpochEnded)
    assert all(e.ema_test_accuracy is not None and e.ema_test_loss is not None for e in epochs)
    assert [e.split for e in sink.of(Evaluated)] == ["test", "ema_test"] * 3
    last = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    # The saved average, loaded into a fresh model, scores what the run reported for it.
    setup = build(config)
    model = build_model(config.model, setup.input_shape, setup.num_classes)
    model.load_state_dict(last["ema"])
    result = evaluate(model, setup.test, setup.pipeline, setup.num_classes)
    assert result.loss == pytest.approx(epochs[-1].ema_test_loss, rel=1e-5)
    assert result.accuracy == epochs[-1].ema_test_accuracy
    # The raw weights are still the model's own after the average was evaluated with them swapped in.
    raw = build_model(config.model, setup.input_shape, setup.num_classes)
    raw.load_state_dict(last["model"])
    assert evaluate(raw, setup.test, setup.pipeline, setup.num_classes).loss == pytest.approx(epochs[-1].test_loss)
    # best.pt is the epoch whose averaged weights scored best.
    best_epoch = max(epochs, key=lambda e: e.ema_test_accuracy)
    assert ckpt.load_checkpoint(run_dir / "checkpoints" / "best.pt")["step"] == best_epoch.step
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best_test_accuracy"] == best_epoch.ema_test_accuracy
    assert summary["ema_test_accuracy"] == epochs[-1].ema_test_accuracy
    header, *lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert header.endswith(",test_acc,ema_val_loss,ema_val_acc,ema_test_loss,ema_test_acc")
    assert lines[-1].endswith(repr(epochs[-1].ema_test_accuracy))


# ----------------------------------------------------------------------------- early stopping


def predicted_stop(results, patience, min_delta, higher):
    """The epoch (1-based) the rule stops at, worked out from a run's results without the engine's code."""
    best, bad = None, 0
    for epoch, value in enumerate(results, start=1):
        better = best is None or (value > best + min_delta if higher else value < best - min_delta)
        best, bad = (value, 0) if better else (best, bad + 1)
        if bad == patience:
            return epoch
    return None


def test_early_stopping_stops_at_the_predicted_epoch_and_says_why(digits_config, capsys, tmp_path):
    config = plain_sgd(digits_config, batch_size=128, epochs=12)
    _, reference = run(config)
    accuracies = [e.test_accuracy for e in reference.of(EpochEnded)]
    expected = predicted_stop(accuracies, patience=2, min_delta=0.01, higher=True)
    assert expected is not None and expected < 12, accuracies  # the rule does stop this run early

    runs = tmp_path / "cli-runs"
    argv = ["--headless", "--optimizer", "sgd", "--lr", "0.1", "--batch-size", "128", "--epochs", "12",
            "--early-stop-metric", "test_accuracy", "--early-stop-patience", "2", "--early-stop-min-delta", "0.01",
            "--checkpoint-minutes", "0", "--runs-dir", str(runs), "--ema-decay", "0.5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert ("options: weight average (EMA) decay 0.5, early stop when test_accuracy has not improved by > 0.01 "
            "for 2 epochs") in out
    assert out.count("EMA test accuracy: ") == expected  # the average does not change what the raw weights do
    reason = f"early stopping: test_accuracy did not improve by more than 0.01 for 2 epochs"
    assert f"stopped at step {expected * 12:,}: {reason}" in out, out
    assert f"Epoch {expected}," in out and f"Epoch {expected + 1}," not in out
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["state"] == "finished" and summary["reason"].startswith(reason)
    assert summary["epoch"] == expected


def test_a_resumed_run_keeps_the_early_stopping_counter(digits_config):
    config = plain_sgd(digits_config, batch_size=128, epochs=12, early_stop_metric="test_accuracy",
                       early_stop_patience=2, early_stop_min_delta=0.01, write=True)
    sink = ListSink()
    whole = train(config.copy(), sink)
    stop_epoch = whole.epoch
    assert whole.reason.startswith("early stopping") and 2 < stop_epoch < 12
    # Stop a second run one epoch before that, after at least one epoch without improvement, then resume it.
    config.output.runs_dir = str(Path(config.output.runs_dir).parent / "second")
    config.train.max_steps = (stop_epoch - 1) * 12
    train(config.copy())
    (run_dir,) = Path(config.output.runs_dir).iterdir()
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["early_stop"]["bad_epochs"] == 1
    config.train.max_steps = 0
    resumed = train(config, resume=state, run_dir=run_dir)
    assert (resumed.epoch, resumed.reason) == (stop_epoch, whole.reason)


def test_early_stopping_rule():
    rule = EarlyStopping("test_loss", patience=2, min_delta=0.05)
    said = [rule.update(e, {"test_loss": v}) for e, v in enumerate([1.0, 0.9, 0.88, 0.8, 0.79, 0.78], 1)]
    assert said == [None] * 5 + ["early stopping: test_loss did not improve by more than 0.05 for 2 epochs "
                                 "(best 0.8 at epoch 4)"]
    rule = EarlyStopping("test_loss", patience=2)
    for epoch, value in enumerate([1.0, float("nan"), 1.2], 1):
        reason = rule.update(epoch, {"test_loss": value})
    assert reason == "early stopping: test_loss did not improve for 2 epochs (best 1 at epoch 1)"


def test_early_stopping_on_a_split_the_run_lacks_is_refused_before_anything_is_written(digits_config, tmp_path):
    digits_config.train.early_stop_metric = "val_loss"
    with pytest.raises(ConfigError, match="this run has no val split: set data.val_split"):
        train(digits_config)
    assert not Path(digits_config.output.runs_dir).exists()
    digits_config.train.early_stop_metric = "ema_test_accuracy"
    assert [e.path for e in cfgmod.validate(digits_config)] == ["train.early_stop_metric"]


# ----------------------------------------------------------------------------- together


ALL_OPTIONS = ["--accumulate", "3", "--clip-norm", "0.5", "--warmup-steps", "10", "--ema-decay", "0.9",
               "--early-stop-metric", "test_loss", "--early-stop-patience", "3"]


def test_every_option_is_a_flag_a_toml_key_and_a_form_field():
    config = config_from_args(build_parser().parse_args(ALL_OPTIONS))
    t = config.train
    assert (t.accumulate, t.clip_norm, config.optim.warmup_steps, t.ema_decay) == (3, 0.5, 10, 0.9)
    assert (t.early_stop_metric, t.early_stop_patience, t.early_stop_min_delta) == ("test_loss", 3, 0.0)
    back = cfgmod.apply_dict(cfgmod.RunConfig(), __import__("tomllib").loads(cfgmod.dump_toml(config)))
    assert back == config
    from ptviz.tui.model.tab import RUN_FIELDS

    assert {"train.accumulate", "train.clip_norm", "optim.warmup_steps", "train.ema_decay",
            "train.early_stop_metric", "train.early_stop_patience", "train.early_stop_min_delta"} <= set(RUN_FIELDS)


def test_every_option_together_under_bf16_autocast(digits_config):
    """bf16 autocast on CPU with accumulation, clipping, warm-up, averaging and early stopping all on."""
    config = config_from_args(build_parser().parse_args([*ALL_OPTIONS, "--precision", "bf16", "--epochs", "2",
                                                         "--batch-size", "64", "--runs-dir", ""]))
    trainer, sink = run(config)
    assert trainer.s.precision == "bf16"
    assert steps_of(sink) == list(range(1, 17))  # 23 batches in groups of 3: 8 steps an epoch
    assert all(0 < v < 100 for v in values(sink, "grad_norms")) and len(values(sink, "grad_norms")) == 16
    assert values(sink, "lrs")[:3] == pytest.approx([0.005, 0.01, 0.015])
    first, second = sink.of(EpochEnded)
    assert first.ema_test_accuracy < second.ema_test_accuracy and second.ema_test_accuracy > 0.5


class Killed(BaseException):
    """Ends a run in the middle of a step, as a kill would: nothing is saved on the way out."""


def test_a_run_that_dies_mid_group_resumes_to_the_uninterrupted_result(digits_config, monkeypatch):
    """The run dies at the second batch of a 3-batch group; the resumed run redoes that group from the
    checkpoint before it and ends bit-for-bit where the uninterrupted one does, with every option on."""
    options = ALL_OPTIONS + ["--epochs", "2", "--batch-size", "64", "--checkpoint-steps", "2",
                             "--checkpoint-minutes", "0", "--log-interval", "1"]
    config = config_from_args(build_parser().parse_args([*options, "--runs-dir", digits_config.output.runs_dir]))
    config.data.transforms = cfgmod.parse_text("data.transforms", "RandomRotation(15)")
    reference = config.copy()
    reference.output.runs_dir = str(Path(config.output.runs_dir).parent / "reference")
    train(reference)
    (ref_dir,) = Path(reference.output.runs_dir).iterdir()
    expected = ckpt.load_checkpoint(ref_dir / "checkpoints" / "last.pt")

    real_step = Trainer._step
    calls = []

    def dies_at_batch_31(self, batch):  # epoch 1 has 23 batches (steps 1-8); step 11 takes batches 30-32
        calls.append(1)
        if len(calls) == 31:  # the second batch of step 11's group
            raise Killed()
        real_step(self, batch)

    monkeypatch.setattr(Trainer, "_step", dies_at_batch_31)
    with pytest.raises(Killed):
        train(config)
    monkeypatch.setattr(Trainer, "_step", real_step)
    (run_dir,) = Path(config.output.runs_dir).iterdir()
    state, path, _ = ckpt.load_newest(run_dir)
    assert (path.name, state["step"], state["epoch"], state["batch_in_epoch"]) == ("last.pt", 10, 1, 6)
    finished = train(config, resume=state, run_dir=run_dir)
    got = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert finished.step == got["step"] == expected["step"] == 16
    for key in ("model", "ema"):
        for name, tensor in expected[key].items():
            assert torch.equal(got[key][name], tensor), f"{key} {name}"
    for index, slot in expected["optimizer"]["state"].items():
        assert torch.equal(got["optimizer"]["state"][index]["momentum_buffer"], slot["momentum_buffer"])
    assert got["early_stop"] == expected["early_stop"]
    assert [r["step"] for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "step"] == list(range(1, 17))


# ----------------------------------------------------------------------------- a user's task


def line_task(config=None):
    """y = 2x - 1 + noise, fitted by one linear layer; the loss names its mean absolute error "mae"."""
    from torch.utils.data import TensorDataset

    from ptviz.engine.task import Task

    g = torch.Generator().manual_seed(0)
    x = torch.rand(100, 1, generator=g)
    y = 2 * x - 1 + 0.05 * torch.randn(100, 1, generator=g)

    def loss(model, batch):
        inputs, targets = batch
        pred = model(inputs)
        return torch.nn.functional.mse_loss(pred, targets), {"mae": (pred - targets).abs().mean()}

    torch.manual_seed(0)
    return Task(model=torch.nn.Linear(1, 1), train=TensorDataset(x, y), test=TensorDataset(x[:40], y[:40]),
                loss=loss, name="line")


def test_a_tasks_accumulated_steps_equal_big_batches_metrics_included(digits_config):
    """100 samples: 4 batches of 8 against one of 32, the last group 4 samples (one batch) against a batch of 4."""
    runs = {}
    for batch_size, accumulate in ((32, 1), (8, 4)):
        config = plain_sgd(digits_config.copy(), batch_size=batch_size, accumulate=accumulate, epochs=2)
        sink = ListSink()
        train(config, sink, task=line_task())
        runs[accumulate] = sink
    big, small = runs[1], runs[4]
    assert steps_of(small) == steps_of(big) == list(range(1, 9))
    assert values(small, "losses") == pytest.approx(values(big, "losses"), rel=1e-5)
    small_mae = [v for m in small.of(StepMetrics) for v in m.metrics["mae"]]
    assert small_mae == pytest.approx([v for m in big.of(StepMetrics) for v in m.metrics["mae"]], rel=1e-5)
    assert small.of(EpochEnded)[-1].test_loss == pytest.approx(big.of(EpochEnded)[-1].test_loss, rel=1e-5)


def test_early_stopping_watches_a_tasks_metric(digits_config):
    """test_mae falls while the line is fitted; with min_delta 1 nothing counts as improving after epoch 1."""
    config = plain_sgd(digits_config, batch_size=10, epochs=8, early_stop_metric="test_mae", early_stop_patience=2,
                       early_stop_min_delta=1.0)
    sink = ListSink()
    finished = train(config, sink, task=line_task())
    assert [e.epoch for e in sink.of(EpochEnded)] == [1, 2, 3]
    assert finished.reason.startswith("early stopping: test_mae did not improve by more than 1 for 2 epochs")
    config.train.early_stop_metric = "test_accuracy"  # a regression task has no accuracy
    with pytest.raises(ConfigError, match="this run reports test_loss, test_mae"):
        train(config, task=line_task())


def test_the_average_of_a_backbone_that_trained_for_a_while_is_not_evaluated_on_stale_features(digits_config):
    """A convnet's frozen backbone thaws at step 2 and freezes again at step 6, when its test features are
    cached anew from the raw weights. The average's backbone differs from those, so its evaluation must run
    the whole model: it equals that of a fresh model loaded with the saved average."""
    from ptviz.engine.commands import SetTrainable

    config = plain_sgd(digits_config, batch_size=32, epochs=1, ema_decay=0.9)
    config.model.name, config.model.freeze_backbone = "cnn", True
    script = {2: SetTrainable("features", True), 6: SetTrainable("features", False)}

    class Scripted(Trainer):
        def _optimizer_step(self):
            super()._optimizer_step()
            if self.step in script:
                self.control.send(script[self.step])  # applied at the next step boundary

    setup = build(config)
    trainer = Scripted(setup, ListSink(), Control())
    trainer.run()
    assert setup.cache_eval  # the test features were cached again after the re-freeze
    (ended,) = trainer.sink.of(EpochEnded)
    fresh = build_model(config.model, setup.input_shape, setup.num_classes)
    fresh.load_state_dict(trainer.ema.state_dict())
    result = evaluate(fresh, setup.test, setup.pipeline, setup.num_classes)
    assert ended.ema_test_loss == pytest.approx(result.loss, rel=1e-5)
    assert ended.ema_test_accuracy == result.accuracy


def test_a_one_cycle_run_with_accumulation_resumes_exactly(digits_config):
    """One-cycle counts optimizer steps (23 batches in pairs: 12 an epoch); a run stopped at step 15 resumes
    onto the same cycle and ends with the uninterrupted run's weights."""
    config = plain_sgd(digits_config, batch_size=64, accumulate=2, epochs=2, write=True)
    config.optim.scheduler = "one-cycle"
    whole = config.copy()
    whole.output.runs_dir = str(Path(config.output.runs_dir).parent / "whole")
    train(whole)
    (whole_dir,) = Path(whole.output.runs_dir).iterdir()
    expected = ckpt.load_checkpoint(whole_dir / "checkpoints" / "last.pt")
    assert expected["scheduler"]["total_steps"] == 24
    config.train.max_steps = 15
    train(config.copy())
    (run_dir,) = Path(config.output.runs_dir).iterdir()
    config.train.max_steps = 0
    train(config, resume=ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt"), run_dir=run_dir)
    got = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert got["step"] == 24
    for name, tensor in expected["model"].items():
        assert torch.equal(got["model"][name], tensor), name
