"""A frozen backbone as a feature function plus a trainable head, with the features cached when they repeat.

With every parameter but the head's frozen, the backbone only does inference: it runs in eval mode
under no_grad and only the head builds an autograd graph. When no random transform feeds it, an image
always gives the same features, so they are computed once per split and each epoch trains the head
on them alone.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

from .data.augment import Pipeline
from .data.batches import Batches
from .data.sources import Split

CACHE_BUDGET_BYTES = 2 * 2**30  # beyond this the features of all splits together are recomputed each time


class _HeadReached(Exception):
    """Raised by the head's pre-hook to stop a forward pass with the head's input in hand."""

    def __init__(self, features: torch.Tensor):
        super().__init__("head reached")
        self.features = features


class FrozenBackbone:
    """Splits `model` at its head: features() is everything before it, head is the trainable rest."""

    def __init__(self, model: nn.Module, head: str):
        self.model = model
        self.head: nn.Module = model.get_submodule(head)
        self.cache: dict[int, Batches | None] = {}  # id(image batches) -> their feature batches
        self.cached_bytes = 0

    def train_mode(self) -> None:
        """Backbone in eval mode (BatchNorm keeps its statistics, no dropout); head in training mode."""
        self.model.eval()
        self.head.train()

    def features(self, inputs: torch.Tensor) -> torch.Tensor:
        """The head's input for a batch of model inputs, computed without autograd."""
        handle = self.head.register_forward_pre_hook(_stop_at_head)
        try:
            with torch.no_grad():
                self.model(inputs)
        except _HeadReached as reached:
            return reached.features
        finally:
            handle.remove()
        raise RuntimeError("the model's forward never called its head")

    def logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """Model output with autograd through the head only."""
        return self.head(self.features(inputs))

    def is_exact(self, sample: torch.Tensor) -> bool:
        """Whether head(features(x)) reproduces model(x): the head must be the model's last step."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                whole = self.model(sample)
                split = self.head(self.features(sample))
        except Exception:  # noqa: BLE001 - any model the split cannot reproduce just keeps the plain path
            return False
        finally:
            self.model.train(was_training)
        return isinstance(whole, torch.Tensor) and whole.shape == split.shape and torch.equal(whole, split)

    def cached(self, batches: Batches, pipeline: Pipeline, autocast: AbstractContextManager) -> Batches | None:
        """`batches` with every image replaced by its features, computed on first use; None if over budget."""
        key = id(batches)
        if key not in self.cache:
            self.cache[key] = self._compute(batches, pipeline, autocast)
        return self.cache[key]

    def _compute(self, batches: Batches, pipeline: Pipeline, autocast: AbstractContextManager) -> Batches | None:
        n = len(batches.split)
        was_training = self.model.training
        self.model.eval()
        store: torch.Tensor | None = None
        start = 0
        try:
            # Index order, not the epoch's shuffle: row i of the cache is sample i of the split.
            for x, _y in batches.epoch(0, order=torch.arange(n)):
                with autocast:
                    f = self.features(pipeline.eval_batch(x))
                if store is None:
                    need = n * f[0].numel() * f.element_size()
                    if self.cached_bytes + need > CACHE_BUDGET_BYTES:
                        return None
                    store = torch.empty((n, *f.shape[1:]), dtype=f.dtype, device=f.device)
                    self.cached_bytes += need
                store[start:start + f.shape[0]] = f
                start += f.shape[0]
        finally:
            self.model.train(was_training)
        if store is None:
            return None
        split = Split(batches.split.name, batches.split.labels, images=store)
        return Batches(split, batches.batch_size, batches.device, shuffle=batches.shuffle, seed=batches.seed,
                       resident=True)


def _stop_at_head(module: nn.Module, args: tuple) -> None:
    raise _HeadReached(args[0])


FEATURES_PIPELINE = Pipeline([], (), ())  # cached features go to the head as they are
