"""The model summary: parameter totals, shapes and FLOPs from one hooked forward pass."""

import torch
from torch import nn

from ptviz.engine.config import ModelConfig
from ptviz.engine.models.registry import build_model, set_trainable
from ptviz.engine.models.summary import sample_batch, summarize


def resnet18(num_classes):
    return build_model(ModelConfig(name="resnet18"), (3, 32, 32), num_classes)


def test_resnet18_totals_with_imagenet_and_ten_class_heads():
    imagenet = summarize(resnet18(1000), torch.zeros(1, 3, 32, 32))
    assert imagenet.params_total == imagenet.root.params_total == 11_689_512
    model = resnet18(10)
    summary = summarize(model, sample_batch(model, (3, 32, 32)), batch_size=128)
    assert summary.params_total == 11_181_642 == summary.params_trainable
    assert summary.param_bytes == 4 * 11_181_642
    fc = summary.module("fc")
    assert (fc.type, fc.output_shapes, fc.params_own, fc.state) == ("Linear", ((1, 10),), 5_130, "trainable")
    assert summary.module("layer4").output_shapes == ((1, 512, 1, 1),)
    assert summary.module("layer1.0.relu").calls == 2  # BasicBlock reuses its ReLU
    assert summary.root.children[-1] == "fc" and summary.module("layer2.0").depth == 2
    # Every FLOP is inside some child of the root (the residual adds cost none), and all are counted.
    assert summary.flops_per_sample == sum(summary.module(c).flops for c in summary.root.children) > 0
    assert summary.activation_bytes == 128 * summary.activation_bytes_per_sample > 0


def test_freeze_all_then_unfreeze_fc_leaves_5130_trainable():
    model = resnet18(10)
    summary = summarize(model, sample_batch(model, (3, 32, 32)))
    tutorial = summary.with_trainable("", False).with_trainable("fc", True)
    assert (tutorial.params_trainable, tutorial.params_frozen) == (5_130, 11_181_642 - 5_130)
    assert (tutorial.root.state, tutorial.module("layer1").state, tutorial.module("fc").state) == (
        "mixed", "frozen", "trainable")
    set_trainable(model, "", False)
    set_trainable(model, "fc", True)
    assert summarize(model, sample_batch(model, (3, 32, 32))).parameters == tutorial.parameters


def test_linear_784_512_costs_2_784_512_flops_per_sample():
    model = build_model(ModelConfig(name="mnist-mlp"), (1, 28, 28), 10)
    summary = summarize(model, torch.zeros(2, 1, 28, 28))
    fc1 = summary.module("fc1")
    assert fc1.flops == 2 * 784 * 512
    assert fc1.output_shapes == ((2, 512),)
    assert summary.flops_per_sample == 2 * (784 * 512 + 512 * 256 + 256 * 10)


def test_summary_leaves_modes_and_batchnorm_statistics_alone():
    model = resnet18(10)
    model.train()
    model.layer1.eval()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    summary = summarize(model, sample_batch(model, (3, 32, 32), 2))
    assert model.training and not model.layer1.training and model.layer2.training
    assert all(torch.equal(v, stats[k]) for k, v in model.state_dict().items())
    assert summary.root.training and not summary.module("layer1.0.bn1").training


def test_a_model_that_rejects_the_sample_still_shows_its_tree():
    model = nn.Sequential(nn.Linear(5, 3), nn.ReLU())
    summary = summarize(model, torch.zeros(1, 7))
    assert "does not go through the model" in summary.forward_error
    assert summary.params_total == 18 and summary.module("0").output_shapes == ()


def test_a_health_measurement_fits_its_six_cell_column_without_being_cut():
    from ptviz.tui.model.format import compact_float

    shown = [compact_float(v) for v in (0.00512, 0.0123, 4.567, 789.1, 1e-5, 3e4, 0.0)]
    assert shown == ["0.0051", "0.0123", "4.57", "789", "1e-05", "3e+04", "0"]
    assert all(len(text) <= 6 for text in shown)
