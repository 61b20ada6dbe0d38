"""Freezing mid-run: every speed path follows requires_grad, and the fast paths compute what the plain path does."""

import pytest
import torch

from ptviz.engine.commands import Control, ScaleLearningRate, SetTrainable
from ptviz.engine.events import Evaluated, StepMetrics
from ptviz.engine.loop import Trainer
from ptviz.engine.recipes import recipe
from ptviz.engine.setup import build
from ptviz.engine.sinks import ListSink
from ptviz.engine.transform_specs import parse_pipeline


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # bit-for-bit comparisons on a shared CPU


def resnet_config(transforms: str = "", fast: bool = True):
    """The cifar10-resnet18 recipe on 40 fake 32x32 images, random weights, backbone frozen: 5 steps an epoch."""
    config = recipe("cifar10-resnet18")
    config.data.dataset = "fake"
    config.data.fake_size = 40
    config.data.batch_size = 8
    config.data.test_batch_size = 10
    config.data.workers = 0
    config.data.transforms = parse_pipeline(transforms)
    config.model.pretrained = False
    config.output.runs_dir = ""
    config.train.log_interval = 1
    config.train.fast_paths = fast
    return config


class Scripted(Trainer):
    """A trainer that sends commands after given steps and records which path each step took."""

    def __init__(self, setup, script: dict[int, list]):
        super().__init__(setup, ListSink(), Control())
        self.script = script
        self.routes: list[str] = []  # per step: what the step's batch held
        self.states: dict[int, dict[str, torch.Tensor]] = {}  # backbone state after each step

    def _step(self, batch):
        self.routes.append("features" if self.s.cache_features else "images")
        super()._step(batch)
        self.states[self.step] = backbone_state(self.s.model)
        for command in self.script.get(self.step, []):
            self.control.send(command)  # applied at the next step boundary


def run_scripted(config, script):
    setup = build(config)
    trainer = Scripted(setup, script)
    trainer.run()
    losses = [loss for event in trainer.sink.of(StepMetrics) for loss in event.losses]
    evaluations = [(e.split, e.loss, e.confusion) for e in trainer.sink.of(Evaluated)]
    return setup, trainer, losses, evaluations


def backbone_state(model, skip: str = "fc."):
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith(skip)}


def test_unfreezing_layer4_of_a_frozen_backbone_trains_layer4_and_nothing_else_of_it():
    """The issue's case: after one step with layer4 thawed its weights moved; the rest of the backbone did not."""
    config = resnet_config()
    config.train.max_steps = 2
    setup = build(config)
    start = backbone_state(setup.model)
    trainer = Scripted(setup, {1: [SetTrainable("layer4", True)]})
    trainer.run()
    assert trainer.step == 2
    assert all(torch.equal(start[k], trainer.states[1][k]) for k in start)  # step 1: the frozen backbone stayed put
    moved = {k for k in start if not torch.equal(trainer.states[2][k], trainer.states[1][k])}
    layer4_weights = {k for k, _ in setup.model.named_parameters() if k.startswith("layer4.")}
    assert layer4_weights <= moved  # every weight of layer4 trained in step 2
    # Nothing outside layer4 changed: no weight, and no BatchNorm statistic of the frozen layers.
    assert {k.split(".")[0] for k in moved} == {"layer4"}


@pytest.mark.parametrize("transforms", ["", "RandomHorizontalFlip()"])
def test_fast_paths_give_the_plain_paths_losses_and_weights_bit_for_bit(transforms):
    """Frozen start, layer4 thawed mid-epoch, a learning-rate change, layer4 frozen again: fast == plain exactly."""
    script = {3: [SetTrainable("layer4", True)], 6: [ScaleLearningRate(0.5)], 8: [SetTrainable("layer4", False)]}
    runs = {}
    for fast in (True, False):
        config = resnet_config(transforms, fast)
        config.train.epochs = 3
        runs[fast] = run_scripted(config, script)
    (fast_setup, fast_run, fast_losses, fast_evals), (plain_setup, plain_run, plain_losses, plain_evals) = (
        runs[True], runs[False])
    assert fast_run.step == plain_run.step == 15 and len(fast_losses) == 15
    assert fast_losses == plain_losses
    assert fast_evals == plain_evals and len(fast_evals) == 3
    fast_state, plain_state = fast_setup.model.state_dict(), plain_setup.model.state_dict()
    assert all(torch.equal(fast_state[k], plain_state[k]) for k in plain_state)
    # The scenario did take the fast routes: cached features while frozen (without random transforms).
    assert plain_run.routes == ["images"] * 15
    cached = "features" if not transforms else "images"
    assert fast_run.routes == [cached] * 3 + ["images"] * 5 + [cached] * 7
    # And layer4 trained while thawed.
    start = build(resnet_config(transforms)).model.state_dict()
    assert not torch.equal(start["layer4.1.conv2.weight"], fast_state["layer4.1.conv2.weight"])
    assert torch.equal(start["layer3.1.bn2.running_mean"], fast_state["layer3.1.bn2.running_mean"])
