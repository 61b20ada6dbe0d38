"""A model's layer tree as plain data: output shapes, parameters and FLOPs from one forward pass.

The pass runs a sample batch through forward hooks inside PyTorch's own FlopCounterMode, in eval mode so
BatchNorm running statistics stay untouched, and restores every module's train/eval flag afterwards.
Run it while no training step is using the model: the hooks would otherwise see the training batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = ""  # qualified name of the model itself


@dataclass(frozen=True)
class ParamInfo:
    """One parameter tensor: qualified name, element count, bytes and whether it trains."""

    name: str
    numel: int
    bytes: int
    trainable: bool


@dataclass(frozen=True)
class ModuleInfo:
    """One node of the layer tree with what it returned, holds and computes."""

    name: str  # qualified name as in named_modules(); "" is the model itself
    type: str
    depth: int
    children: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]  # every tensor returned by the first call, batch dim included
    calls: int  # how often the sample pass called it (0: never used by forward)
    params_own: int
    params_total: int  # own plus every descendant's
    params_trainable: int  # of params_total
    flops: int  # per sample, this module and everything it calls
    training: bool

    @property
    def short_name(self) -> str:
        """The last part of the qualified name (the class name for the model itself)."""
        return self.name.rpartition(".")[2] if self.name else self.type

    @property
    def state(self) -> str:
        """'trainable', 'frozen', 'mixed', or '' when the subtree holds no parameters."""
        if self.params_total == 0:
            return ""
        if self.params_trainable == self.params_total:
            return "trainable"
        return "frozen" if self.params_trainable == 0 else "mixed"


@dataclass(frozen=True)
class ModelSummary:
    """The whole tree (pre-order, parents first) and the model's totals."""

    modules: tuple[ModuleInfo, ...]
    parameters: tuple[ParamInfo, ...]
    sample_shape: tuple[int, ...]  # the batch the pass used
    batch_size: int  # the training batch the activation estimate is for
    buffer_bytes: int
    activation_bytes_per_sample: int  # tensors autograd keeps for a backward through every layer
    flops_per_sample: int
    forward_error: str = ""  # why the sample pass failed; shapes and FLOPs are then missing

    @property
    def root(self) -> ModuleInfo:
        """The model itself."""
        return self.modules[0]

    @cached_property
    def params_total(self) -> int:
        """Every parameter element."""
        return sum(p.numel for p in self.parameters)

    @cached_property
    def params_trainable(self) -> int:
        """Parameter elements with requires_grad set."""
        return sum(p.numel for p in self.parameters if p.trainable)

    @property
    def params_frozen(self) -> int:
        """Parameter elements with requires_grad cleared."""
        return self.params_total - self.params_trainable

    @cached_property
    def param_bytes(self) -> int:
        """Memory the parameters occupy."""
        return sum(p.bytes for p in self.parameters)

    @property
    def activation_bytes(self) -> int:
        """Estimated activation memory a training step keeps for `batch_size` samples."""
        return self.activation_bytes_per_sample * self.batch_size

    def module(self, name: str) -> ModuleInfo:
        """The node with qualified name `name`; KeyError when there is none."""
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, ModuleInfo]:
        return {m.name: m for m in self.modules}

    def share(self, name: str) -> float:
        """Fraction of all parameters inside module `name`."""
        total = self.params_total
        return self.module(name).params_total / total if total else 0.0

    def with_trainable(self, module: str, trainable: bool) -> ModelSummary:
        """This summary after every parameter under `module` was set to `trainable` (plain data, no model)."""
        params = tuple(replace(p, trainable=trainable) if _inside(p.name, module) else p for p in self.parameters)
        counts = _trainable_counts(params)
        evaluating: set[str] = set()  # frozen subtrees run in eval mode while training (models/frozen.py)
        modules = []
        for m in self.modules:
            trainable = counts.get(m.name, 0)
            parent_evaluating = bool(m.name) and _owner(m.name) in evaluating
            if parent_evaluating or (m.params_total and not trainable):
                evaluating.add(m.name)
            modules.append(replace(m, params_trainable=trainable, training=m.name not in evaluating))
        return replace(self, modules=tuple(modules), parameters=params)

    def with_batch_size(self, batch_size: int) -> ModelSummary:
        """This summary with the activation estimate for another training batch size."""
        return replace(self, batch_size=batch_size)


def unwrap(model: nn.Module) -> nn.Module:
    """The module torch.compile wrapped, or `model` itself."""
    return getattr(model, "_orig_mod", model)


def sample_batch(model: nn.Module, input_shape: tuple[int, ...], batch: int = 1) -> torch.Tensor:
    """Zeros of `input_shape` for `batch` samples on the model's device, in its parameter dtype."""
    first = next(unwrap(model).parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
    return torch.zeros((batch, *input_shape), device=device, dtype=dtype)


def summarize(model: nn.Module, sample: torch.Tensor | tuple[Any, ...], batch_size: int | None = None
              ) -> ModelSummary:
    """Summarize `model` by one forward pass of `sample` (a small batch, or the positional arguments of a call);
    activations are for `batch_size`. Lazy modules are materialised by that pass before parameters are counted."""
    model = unwrap(model)
    args = sample if isinstance(sample, tuple) else (sample,)
    first = next((a for a in args if isinstance(a, torch.Tensor)), None)
    shape = tuple(first.shape) if first is not None else ()
    named = list(model.named_modules())
    modes = {name: module.training for name, module in named}
    n = shape[0] if shape else 1
    trace = _Trace(model, named)
    error = ""
    try:
        trace.run(args)
    except Exception as exc:  # noqa: BLE001 - a user model may fail in any way; the tree still shows
        error = f"a batch of shape {shape} does not go through the model: {type(exc).__name__}: {exc}"
    params = tuple(ParamInfo(n, _numel(p), _numel(p) * p.element_size(), p.requires_grad)
                   for n, p in model.named_parameters())
    counts = _trainable_counts(params)
    totals = _subtree_counts(params)
    own: dict[str, int] = {}
    for p in params:
        own[_owner(p.name)] = own.get(_owner(p.name), 0) + p.numel
    children = {name: [] for name, _ in named}
    for name, _ in named[1:]:
        children.setdefault(_owner(name), []).append(name)
    modules = tuple(
        ModuleInfo(name=name, type=type(module).__name__, depth=name.count(".") + 1 if name else 0,
                   children=tuple(children.get(name, ())), output_shapes=trace.shapes.get(name, ()),
                   calls=trace.calls.get(name, 0), params_own=own.get(name, 0), params_total=totals.get(name, 0),
                   params_trainable=counts.get(name, 0), flops=trace.flops.get(name, 0) // max(1, n),
                   training=modes[name])
        for name, module in named
    )
    buffers = sum(_numel(b) * b.element_size() for b in model.buffers())
    return ModelSummary(modules=modules, parameters=params, sample_shape=shape,
                        batch_size=batch_size or n, buffer_bytes=buffers,
                        activation_bytes_per_sample=trace.saved_bytes // max(1, n),
                        flops_per_sample=modules[0].flops, forward_error=error)


def _numel(param: torch.Tensor) -> int:
    """Elements of a parameter; 0 for a lazy one the sample pass could not materialise."""
    return 0 if isinstance(param, nn.parameter.UninitializedTensorMixin) else param.numel()


def _owner(qualified: str) -> str:
    """The module a parameter or submodule name belongs to ('fc.weight' -> 'fc', 'fc' -> '')."""
    return qualified.rpartition(".")[0]


def _inside(qualified: str, module: str) -> bool:
    return module == ROOT or qualified == module or qualified.startswith(module + ".")


def _ancestors(qualified: str) -> Iterator[str]:
    """Every module name that contains `qualified`, the model itself included."""
    name = _owner(qualified)
    while True:
        yield name
        if not name:
            return
        name = _owner(name)


def _subtree_counts(params: tuple[ParamInfo, ...]) -> dict[str, int]:
    """Parameter elements under each module."""
    counts: dict[str, int] = {}
    for p in params:
        for name in _ancestors(p.name):
            counts[name] = counts.get(name, 0) + p.numel
    return counts


def _trainable_counts(params: tuple[ParamInfo, ...]) -> dict[str, int]:
    """Trainable parameter elements under each module."""
    return _subtree_counts(tuple(p for p in params if p.trainable))


def _tensors(value: object) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


class _Trace:
    """One hooked forward pass: output shapes and call counts per module, FLOPs, saved-tensor bytes."""

    def __init__(self, model: nn.Module, named: list[tuple[str, nn.Module]]):
        self.model = model
        self.named = named
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
        self.calls: dict[str, int] = {}
        self.flops: dict[str, int] = {}
        self.saved_bytes = 0

    def run(self, args: tuple[Any, ...]) -> None:
        modes = [(module, module.training) for _, module in self.named]
        handles = [module.register_forward_hook(self._hook(name)) for name, module in self.named]
        saved: dict[int, tuple[int, torch.Tensor]] = {}  # storage address -> (bytes, tensor kept alive)

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            saved[storage.data_ptr()] = (storage.nbytes(), t)  # holding t keeps its address from being reused
            return t

        counter = FlopCounterMode(display=False)
        try:
            self.model.eval()
            with torch.no_grad(), counter:
                self.model(*args)
            for handle in handles:  # shapes and call counts come from the first pass only
                handle.remove()
            handles = []
            # A second pass with grad: an input that requires grad makes autograd keep what a backward through
            # every layer would need, so the estimate does not depend on which layers are frozen right now.
            # (FlopCounterMode is left out here: under grad it hooks every tensor and gets slow.)
            grad_args = tuple(a.detach().clone().requires_grad_(a.is_floating_point())
                              if isinstance(a, torch.Tensor) else a for a in args)
            with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                self.model(*grad_args)
        finally:
            for handle in handles:
                handle.remove()
            for module, training in modes:
                module.training = training
        weights = {t.untyped_storage().data_ptr() for t in (*self.model.parameters(), *self.model.buffers())}
        self.saved_bytes = sum(size for ptr, (size, _) in saved.items() if ptr not in weights and ptr != 0)
        self._read_flops(counter)

    def _hook(self, name: str):
        def hook(module: nn.Module, args: object, output: object) -> None:
            self.calls[name] = self.calls.get(name, 0) + 1
            if name not in self.shapes:
                self.shapes[name] = tuple(tuple(t.shape) for t in _tensors(output))
        return hook

    def _read_flops(self, counter: FlopCounterMode) -> None:
        """Per-module totals; the counter names modules 'RootClass.qualified.name'."""
        root = type(self.model).__name__
        for key, ops in counter.get_flop_counts().items():
            if key == "Global":
                continue
            name = ROOT if key == root else key.removeprefix(root + ".")
            self.flops[name] = sum(ops.values())
        self.flops[ROOT] = counter.get_total_flops()
