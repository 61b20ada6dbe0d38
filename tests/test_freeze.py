"""Freezing and unfreezing: requires_grad on a subtree, an optimizer that skips frozen weights, the loop command."""

import pytest
import torch
import torch.nn.functional as F

from ptviz.engine.commands import Resume, SetTrainable
from ptviz.engine.config import ModelConfig, OptimConfig
from ptviz.engine.errors import ModelError
from ptviz.engine.events import Notice, Paused, Resumed, RunFinished, TrainableChanged
from ptviz.engine.loop import Trainer
from ptviz.engine.models.registry import (apply_freeze_edits, build_model, count_parameters, set_trainable,
                                          with_freeze_edit)
from ptviz.engine.optim import build_optimizer
from ptviz.engine.setup import build
from ptviz.engine.sinks import ListSink


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed(model, before):
    """Names of parameters whose values differ from `before` in any bit."""
    return {name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])}


def one_step(model, optimizer):
    """One training step on a fixed random batch, as the loop does it."""
    x = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 10
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adamw"])
def test_frozen_weights_stay_bit_for_bit_and_thawed_ones_train(optimizer):
    """With momentum or decoupled weight decay in play, a frozen layer still does not move at all."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="mnist-mlp"), (1, 28, 28), 10)
    opt = build_optimizer(OptimConfig(optimizer=optimizer, lr=0.01, weight_decay=0.01), model)
    one_step(model, opt)  # momentum and Adam state now exist for every parameter
    assert set_trainable(model, "fc1", False) == (535_818, 535_818 - 401_920)
    before = snapshot(model)
    one_step(model, opt)
    assert changed(model, before) == {"fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"}
    set_trainable(model, "fc1", True)
    before = snapshot(model)
    one_step(model, opt)
    assert {"fc1.weight", "fc1.bias"} <= changed(model, before)


def test_parameters_frozen_from_the_start_train_once_unfrozen():
    """freeze_backbone at build time: the optimizer still holds the backbone, so unfreezing it later trains it."""
    model = build_model(ModelConfig(name="mnist-mlp", freeze_backbone=True), (1, 28, 28), 10)
    assert count_parameters(model) == (535_818, 2_570)
    opt = build_optimizer(OptimConfig(optimizer="sgd", lr=0.1), model)
    before = snapshot(model)
    one_step(model, opt)
    assert changed(model, before) == {"fc3.weight", "fc3.bias"}
    set_trainable(model, "", True)
    before = snapshot(model)
    one_step(model, opt)
    assert changed(model, before) == set(before)


def test_set_trainable_names_a_missing_module():
    model = build_model(ModelConfig(name="mnist-mlp"), (1, 28, 28), 10)
    with pytest.raises(ModelError, match="no module named 'fc9'"):
        set_trainable(model, "fc9", False)


def test_loop_applies_freeze_at_a_step_boundary(digits_config):
    """Freeze all pauses the loop (nothing would train); unfreezing fc3 and resuming trains only fc3."""
    digits_config.train.max_steps = 4
    digits_config.output.runs_dir = ""
    setup = build(digits_config)
    sink = ListSink()

    class Tutorial:
        """On the training thread: once the loop pauses with everything frozen, thaw the head and resume."""

        def emit(self, event):
            sink.emit(event)
            if isinstance(event, Paused):
                trainer.control.send(SetTrainable("fc3", True))
                trainer.control.send(SetTrainable("nope", True))
                trainer.control.send(Resume())

    from ptviz.engine.commands import Control

    trainer = Trainer(setup, Tutorial(), Control())
    before = snapshot(setup.model)
    trainer.control.send(SetTrainable("", False))
    finished = trainer.run()
    assert finished.step == 4 and isinstance(sink.events[-1], RunFinished)
    freeze, thaw = sink.of(TrainableChanged)
    assert (freeze.step, freeze.module, freeze.trainable, freeze.params_trainable) == (0, "", False, 0)
    assert (thaw.module, thaw.trainable, thaw.params_trainable, thaw.params_total) == ("fc3", True, 2_570, 167_178)
    assert sink.of(Paused)[0].step == 0 and sink.of(Resumed)[0].step == 0
    notices = [n.text for n in sink.of(Notice)]
    assert any("no parameter is trainable" in t for t in notices)
    assert any("no module named 'nope'" in t for t in notices)
    assert changed(setup.model, before) == {"fc3.weight", "fc3.bias"}


def test_a_run_with_a_random_frozen_backbone_warns_at_its_start(digits_config):
    """The warning reaches the run's events (log, console, metrics.jsonl) before the first step."""
    digits_config.model.name = "cnn"
    digits_config.model.freeze_backbone = True
    digits_config.train.max_steps = 1
    digits_config.output.runs_dir = ""
    sink = ListSink()
    from ptviz.engine.loop import train

    train(digits_config, sink)
    warnings = [n.text for n in sink.of(Notice) if n.level == "warning"]
    assert len(warnings) == 1 and "--no-freeze-backbone" in warnings[0]
    assert sink.events.index(sink.of(Notice)[0]) == 1  # right after RunStarted


@pytest.mark.parametrize("edits, message", [
    (["-featres"], "model.freeze: -featres: the model has no module named 'featres' (did you mean 'features'?)"),
    (["-fc.weight"], "model.freeze: -fc.weight: the model has no module named 'fc.weight' "
                     "('fc.weight' is a parameter; name its module, 'fc')"),
    (["-"], "model.freeze: - leaves no parameter trainable; unfreeze a module after it, e.g. +fc"),
])
def test_a_freeze_typo_fails_the_run_with_one_clear_line(digits_config, edits, message):
    """No traceback and no RuntimeError from backward: a user error naming the edit."""
    from ptviz.engine.events import RunFailed
    from ptviz.engine.loop import train

    digits_config.model.name = "cnn"
    digits_config.model.freeze = edits
    sink = ListSink()
    with pytest.raises(ModelError):
        train(digits_config, sink)
    (failed,) = sink.of(RunFailed)
    assert failed.user_error and failed.traceback == "" and failed.message == message


def test_a_freeze_edit_drops_the_earlier_edits_it_overrides():
    """f fc1, u fc1, F, U in the Model tab record `+`, not `-fc1, +fc1, -, +`; an edit of a module keeps the
    edits of the modules around it, and the model ends as the whole list would leave it."""
    edits: list[str] = []
    for module, trainable in (("fc1", False), ("fc1", True), ("", False), ("", True)):
        edits = with_freeze_edit(edits, module, trainable)
    assert edits == ["+"]
    edits = []
    for module, trainable in (("", False), ("fc2", True), ("fc1", True), ("fc1", False)):
        edits = with_freeze_edit(edits, module, trainable)
    assert edits == ["-", "+fc2", "-fc1"]
    full = ["-", "+fc2", "+fc1", "-fc1"]
    a, b = (build_model(ModelConfig(name="mnist-mlp"), (1, 8, 8), 10) for _ in range(2))
    apply_freeze_edits(a, full)
    apply_freeze_edits(b, edits)
    assert [p.requires_grad for p in a.parameters()] == [p.requires_grad for p in b.parameters()]
