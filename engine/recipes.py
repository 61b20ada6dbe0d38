"""Named presets: the tutorial's two recipes, exactly as written there, and the offline default."""

from __future__ import annotations

from collections.abc import Callable

from .config import DataConfig, ModelConfig, OptimConfig, OutputConfig, RunConfig, TrainConfig
from .errors import ConfigError, FieldError
from .transform_specs import TransformSpec

DEFAULT_RECIPE = "digits-mlp"


def mnist_mlp() -> RunConfig:
    """Tutorial section 3: MNISTNet 784-512-256-10, Normalize(0.5, 0.5), SGD lr 0.01, batch 64, 10 epochs."""
    return RunConfig(
        recipe="mnist-mlp",
        data=DataConfig(dataset="mnist", batch_size=64, test_batch_size=64, mean=(0.5,), std=(0.5,)),
        model=ModelConfig(name="mnist-mlp"),
        optim=OptimConfig(optimizer="sgd", lr=0.01, momentum=0.0),
        train=TrainConfig(epochs=10, log_interval=100),
    )


def cifar10_resnet18() -> RunConfig:
    """Tutorial section 5: pretrained ResNet-18, fc -> 10, backbone frozen, SGD lr 0.001 momentum 0.9."""
    return RunConfig(
        recipe="cifar10-resnet18",
        data=DataConfig(
            dataset="cifar10",
            batch_size=128,
            test_batch_size=100,
            workers=2,
            transforms=[
                TransformSpec("RandomCrop", {"size": 32, "padding": 4}),
                TransformSpec("RandomHorizontalFlip", {"p": 0.5}),
            ],
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2023, 0.1994, 0.2010),
        ),
        model=ModelConfig(name="resnet18", pretrained=True, freeze_backbone=True, num_classes=10),
        optim=OptimConfig(optimizer="sgd-momentum", lr=0.001, momentum=0.9),
        train=TrainConfig(epochs=10, log_interval=100),
        output=OutputConfig(print_every=100),  # the tutorial's running-loss lines
    )


def digits_mlp() -> RunConfig:
    """The tutorial's MLP on the embedded 8x8 digits, tuned to pass 95% test accuracy in 10 CPU epochs."""
    return RunConfig(
        recipe="digits-mlp",
        data=DataConfig(dataset="digits", batch_size=32, test_batch_size=360, mean=(0.5,), std=(0.5,)),
        model=ModelConfig(name="mnist-mlp"),
        # Plain SGD at the tutorial's 0.01 needs ~100 epochs on 1,437 images; momentum gets there in 10.
        optim=OptimConfig(optimizer="sgd-momentum", lr=0.05, momentum=0.9),
        train=TrainConfig(epochs=10, log_interval=5),
    )


RECIPES: dict[str, Callable[[], RunConfig]] = {
    "digits-mlp": digits_mlp,
    "mnist-mlp": mnist_mlp,
    "cifar10-resnet18": cifar10_resnet18,
}


def recipe(name: str) -> RunConfig:
    """A fresh copy of the named preset; ConfigError lists the known names."""
    try:
        return RECIPES[name]()
    except KeyError:
        raise ConfigError([FieldError("recipe", name, f"must be one of: {', '.join(RECIPES)}")]) from None
