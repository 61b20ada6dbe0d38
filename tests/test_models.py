"""Models: the tutorial's MLP, ResNet-18 with cached pretrained weights and a frozen backbone."""

import pytest
import torch

from ptviz.engine.config import ModelConfig
from ptviz.engine.errors import ModelError
from ptviz.engine.models.registry import build_model, count_parameters, random_backbone_warning


def test_mnist_mlp_is_784_512_256_10():
    model = build_model(ModelConfig(name="mnist-mlp"), (1, 28, 28), 10)
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(512, 784), (512,), (256, 512), (256,), (10, 256), (10,)]
    assert build_model(ModelConfig(name="mnist-mlp"), (1, 8, 8), 10).fc1.in_features == 64


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A private torch hub cache holding ResNet-18 'ImageNet' weights with a recognisable conv1."""
    from torchvision.models import resnet18

    from ptviz.engine.models.resnet import weights_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    state = resnet18(weights=None).state_dict()
    state["conv1.weight"] = torch.full_like(state["conv1.weight"], 0.125)
    path = weights_file()
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path


def test_resnet18_loads_cached_pretrained_weights_and_freezes_backbone(hub_cache):
    model = build_model(ModelConfig(name="resnet18", pretrained=True, freeze_backbone=True), (3, 32, 32), 10)
    assert torch.all(model.conv1.weight == 0.125)
    total, trainable = count_parameters(model)
    assert (total, trainable) == (11_181_642, 5_130)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_resnet18_without_cached_weights_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    with pytest.raises(ModelError, match="weights not found at .*resnet18-.*--no-pretrained$"):
        build_model(ModelConfig(name="resnet18", pretrained=True), (3, 32, 32), 10)
    # With the backbone frozen, --no-pretrained alone would train only the head of a random network.
    with pytest.raises(ModelError, match="from scratch with --no-pretrained --no-freeze-backbone$"):
        build_model(ModelConfig(name="resnet18", pretrained=True, freeze_backbone=True), (3, 32, 32), 10)


def test_a_frozen_backbone_with_random_weights_is_warned_about(hub_cache):
    """Built-in models without pretrained weights get a warning naming the flags that train the whole network."""
    cases = [(ModelConfig(name="resnet18", freeze_backbone=True), "--no-pretrained --no-freeze-backbone"),
             (ModelConfig(name="cnn", freeze_backbone=True), "--no-freeze-backbone"),
             (ModelConfig(name="resnet18", pretrained=True, freeze_backbone=True), None),
             (ModelConfig(name="resnet18"), None),
             (ModelConfig(name="cnn", freeze_backbone=True, freeze=["+features"]), None)]  # that part learns
    for cfg, flags in cases:
        warning = random_backbone_warning(cfg, build_model(cfg, (3, 32, 32), 10))
        if flags is None:
            assert warning is None, cfg
        else:
            assert warning.startswith("model.freeze_backbone: ") and "random" in warning
            assert warning.endswith(flags), warning


def test_resnet18_refuses_weights_that_would_run_code(hub_cache):
    import pickle

    class Evil:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    hub_cache.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    with pytest.raises(ModelError, match="not a readable weights file"):
        build_model(ModelConfig(name="resnet18", pretrained=True), (3, 32, 32), 10)
