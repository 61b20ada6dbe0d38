"""P1: samples/s of the tutorial's own training loop against the ptviz engine, same model, same data.

The tutorial loop is section 3's shape: a DataLoader over a per-sample dataset with shuffle=True,
ToTensor + Normalize applied to each sample, `loss.item()` after every step, and section 5's test pass
after each epoch. Its per-sample transform works on tensors, which is faster than the tutorial's
PIL path, so the baseline is a generous one. The engine side is the real headless loop: `build()`
then `Trainer.run()` with a NullSink, exactly what `ptviz.engine.loop.train` runs. Both times include
setting up the model and the batches, and the test pass after every epoch.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch.utils.data import DataLoader, Dataset

from benchmarks.common import Result, interleaved, median, timed
from ptviz.engine.commands import Control
from ptviz.engine.config import RunConfig
from ptviz.engine.data import sources
from ptviz.engine.data.sources import DataBundle, Split
from ptviz.engine.device import resolve_device
from ptviz.engine.loop import Trainer
from ptviz.engine.models.mlp import MNISTNet
from ptviz.engine.recipes import recipe
from ptviz.engine.setup import build
from ptviz.engine.sinks import NullSink

TARGET = 1.2


@dataclass
class Workload:
    """One row of P1: a data set, the recipe that trains on it and for how long."""

    name: str
    data: DataBundle
    config: RunConfig


def mnist_shaped(n_train: int, n_test: int, seed: int = 0) -> DataBundle:
    """MNIST-sized uint8 images made in memory: noise plus a bright bar whose row encodes the class."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(28)[None, :, None]
    classes = torch.arange(10)[:, None, None]
    bars = (rows >= 2 + 2 * classes) & (rows < 4 + 2 * classes) & (torch.arange(28)[None, None, :] >= 4)

    def split(name: str, n: int) -> Split:
        labels = torch.randint(0, 10, (n,), generator=g)
        noise = torch.randint(0, 60, (n, 28, 28), generator=g, dtype=torch.uint8)
        images = torch.where(bars[labels], torch.tensor(255, dtype=torch.uint8), noise).unsqueeze(1)
        return Split(name, labels, images=images.contiguous())

    return DataBundle(split("train", n_train), None, split("test", n_test), tuple(str(i) for i in range(10)),
                      (1, 28, 28), "made in memory")


def workloads(args: argparse.Namespace) -> list[Workload]:
    """The MNIST-shaped set under the mnist-mlp recipe and the embedded digits under digits-mlp."""
    mnist = recipe("mnist-mlp")
    mnist.train.epochs = 1
    digits = recipe("digits-mlp")
    digits.train.epochs = 3 if args.quick else 10
    out = []
    for config in (mnist, digits):
        config.output.runs_dir = ""
        config.train.device = args.device
    n = args.mnist_size
    out.append(Workload(f"{n}×1×28×28 in memory, mnist-mlp, {mnist.train.epochs} epoch",
                        mnist_shaped(n, max(1, n // 6)), mnist))
    out.append(Workload(f"digits (embedded), digits-mlp, {digits.train.epochs} epochs",
                        sources.load(digits.data), digits))
    return out


# ----------------------------------------------------------------------------- the tutorial's loop


class PerSample(Dataset):
    """A split seen one sample at a time, converted and normalised per sample as ToTensor + Normalize do."""

    def __init__(self, split: Split, mean: tuple[float, ...], std: tuple[float, ...]):
        self.images, self.labels = split.images, split.labels
        self.mean, self.std = list(mean), list(std)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].float().div(255)  # ToTensor: uint8 0..255 -> float 0..1
        return TF.normalize(image, self.mean, self.std), int(self.labels[index])


def tutorial_loop(work: Workload, device: torch.device) -> float:
    """Train as the tutorial does; returns the final test accuracy."""
    cfg = work.config
    torch.manual_seed(cfg.train.seed)
    model = MNISTNet(math.prod(work.data.shape), len(work.data.class_names)).to(device)
    momentum = cfg.optim.momentum if cfg.optim.optimizer == "sgd-momentum" else 0.0
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=momentum)
    mean, std = cfg.data.mean, cfg.data.std
    train_loader = DataLoader(PerSample(work.data.train, mean, std), batch_size=cfg.data.batch_size, shuffle=True)
    test_loader = DataLoader(PerSample(work.data.test, mean, std), batch_size=cfg.data.test_batch_size)
    accuracy = 0.0
    for _epoch in range(cfg.train.epochs):
        model.train()
        running_loss = 0.0
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            outputs = model(inputs)
            loss = F.cross_entropy(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, labels in test_loader:
                images, labels = images.to(device), labels.to(device)
                correct += (model(images).argmax(1) == labels).sum().item()
                total += labels.size(0)
        accuracy = correct / total
    return accuracy


# ----------------------------------------------------------------------------- the engine


def engine_loop(work: Workload) -> float:
    """Train with the engine's headless loop; returns the final test accuracy."""
    setup = build(work.config.copy(), data=work.data)
    finished = Trainer(setup, NullSink(), Control()).run()
    return float(finished.test_accuracy or 0.0)


# ----------------------------------------------------------------------------- the case


def run(args: argparse.Namespace) -> list[Result]:
    """P1 for every workload: median samples/s of each side over interleaved repeats, and their ratio."""
    results = []
    for work in workloads(args):
        device = resolve_device(work.config.train.device)
        samples = len(work.data.train) * work.config.train.epochs
        accuracy: dict[str, list[float]] = {"tutorial": [], "engine": []}

        def side(name: str, fn) -> float:
            seconds, acc = timed(fn)
            accuracy[name].append(acc)
            return samples / seconds

        _warm_up(work, device)
        runs = interleaved({"tutorial": lambda: side("tutorial", lambda: tutorial_loop(work, device)),
                            "engine": lambda: side("engine", lambda: engine_loop(work))}, args.repeats)
        base, ours = median(runs["tutorial"]), median(runs["engine"])
        results.append(Result(
            case="P1", measure=f"samples/s: {work.name}", value=ours / base, unit="x", target=TARGET,
            higher_is_better=True, baseline=f"{base:,.0f}/s", ours=f"{ours:,.0f}/s",
            raw={"samples_per_run": samples, "device": str(device), "tutorial_samples_per_s": runs["tutorial"],
                 "engine_samples_per_s": runs["engine"], "tutorial_test_accuracy": accuracy["tutorial"],
                 "engine_test_accuracy": accuracy["engine"]},
        ))
    return results


def _tiny(config: RunConfig) -> RunConfig:
    config = config.copy()
    config.train.max_steps = 5
    config.train.epochs = 1
    return config


def _warm_up(work: Workload, device: torch.device) -> None:
    """One short run of each side so first-call costs (kernel selection, imports) are not timed."""
    short = Workload(work.name, work.data, _tiny(work.config))
    engine_loop(short)
    small = DataBundle(work.data.train.subset("train", torch.arange(min(320, len(work.data.train)))), None,
                       work.data.test.subset("test", torch.arange(min(100, len(work.data.test)))),
                       work.data.class_names, work.data.shape, work.data.source)
    tutorial_loop(Workload(work.name, small, _tiny(work.config)), device)
