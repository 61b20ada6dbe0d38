"""The model split at its head: while every parameter before the head is frozen, the backbone is a feature function.

Then only the head builds an autograd graph, and when no random transform feeds the backbone and nothing
in it depends on training mode, an image always gives the same features: they are computed once per split
and each epoch trains the head on them alone. Whether the split applies is asked again whenever a freeze
or unfreeze changes which parameters require gradients (Setup.trainable_changed); caches are dropped as
soon as any backbone parameter may train, since its features then change.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch
from torch import nn

from .data.augment import Pipeline
from .data.batches import Batches
from .data.sources import Split
from .models.frozen import kept_modes, set_training_modes

CACHE_BUDGET_BYTES = 2 * 2**30  # beyond this the features of all splits together are recomputed each time


class _HeadReached(Exception):
    """Raised by the head's pre-hook to stop a forward pass with the head's input in hand."""

    def __init__(self, features: torch.Tensor):
        super().__init__("head reached")
        self.features = features


class FrozenBackbone:
    """Splits `model` at its head: features() is everything before it, head is the rest."""

    def __init__(self, model: nn.Module, head: str):
        self.model = model
        self.head: nn.Module = model.get_submodule(head)
        self.cache: dict[int, Batches | None] = {}  # id(image batches) -> their feature batches
        self.cached_bytes = 0

    def backbone_frozen(self) -> bool:
        """Whether there are parameters before the head and none requires a gradient (the split is valid then)."""
        head = {id(p) for p in self.head.parameters()}
        backbone = [p for p in self.model.parameters() if id(p) not in head]
        return bool(backbone) and not any(p.requires_grad for p in backbone)

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
        with kept_modes(self.model):
            self.model.eval()
            try:
                with torch.no_grad():
                    whole = self.model(sample)
                    split = self.head(self.features(sample))
            except Exception:  # noqa: BLE001 - any model the split cannot reproduce just keeps the plain path
                return False
        return isinstance(whole, torch.Tensor) and whole.shape == split.shape and torch.equal(whole, split)

    def is_fixed(self, sample: torch.Tensor) -> bool:
        """Whether the backbone in training modes gives its eval-mode features and changes no buffer.

        False when something before the head depends on training mode (dropout, or BatchNorm, held by a
        module that is not frozen): its features then differ per step and must not be cached. The check
        leaves buffers and random number generators as they were.
        """
        buffers = [b.detach().clone() for b in self.model.buffers()]
        device = sample.device
        forked = dict(devices=[device], device_type=device.type) if device.type != "cpu" else dict(devices=[])
        try:
            with kept_modes(self.model), torch.random.fork_rng(**forked):
                set_training_modes(self.model)
                training = self.features(sample)
                unchanged = all(torch.equal(b, saved) for b, saved in zip(self.model.buffers(), buffers))
                self.model.eval()
                evaluating = self.features(sample)
        except Exception:  # noqa: BLE001 - e.g. BatchNorm in training mode on one sample: not provably fixed
            return False
        finally:
            with torch.no_grad():
                for b, saved in zip(self.model.buffers(), buffers):
                    b.copy_(saved)
        return unchanged and torch.equal(training, evaluating)

    def drop_cache(self) -> None:
        """Forget every split's features (the backbone may change)."""
        self.cache.clear()
        self.cached_bytes = 0

    def cached(self, batches: Batches, pipeline: Pipeline, autocast: AbstractContextManager) -> Batches | None:
        """`batches` with every image replaced by its features, computed on first use; None if over budget."""
        key = id(batches)
        if key not in self.cache:
            self.cache[key] = self._compute(batches, pipeline, autocast)
        return self.cache[key]

    def _compute(self, batches: Batches, pipeline: Pipeline, autocast: AbstractContextManager) -> Batches | None:
        n = len(batches.split)
        store: torch.Tensor | None = None
        labels = torch.empty(n, dtype=torch.long, device=batches.device)  # as the batches give them
        start = 0
        with kept_modes(self.model):
            self.model.eval()
            # Index order, not the epoch's shuffle: row i of the cache is sample i of the split.
            for x, y in batches.epoch(0, order=torch.arange(n)):
                with autocast:
                    f = self.features(pipeline.eval_batch(x))
                if store is None:
                    need = n * f[0].numel() * f.element_size()
                    if self.cached_bytes + need > CACHE_BUDGET_BYTES:
                        return None
                    store = torch.empty((n, *f.shape[1:]), dtype=f.dtype, device=f.device)
                    self.cached_bytes += need
                store[start:start + f.shape[0]] = f
                labels[start:start + f.shape[0]] = y
                start += f.shape[0]
        if store is None:
            return None
        split = Split(batches.split.name, labels, images=store)
        return Batches(split, batches.batch_size, batches.device, shuffle=batches.shuffle, seed=batches.seed,
                       resident=True)


def _stop_at_head(module: nn.Module, args: tuple) -> None:
    raise _HeadReached(args[0])


FEATURES_PIPELINE = Pipeline([], (), ())  # cached features go to the head as they are
