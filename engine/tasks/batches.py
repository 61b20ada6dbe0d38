"""A Task's batches through a DataLoader: order from (seed, epoch), seeded samples, clear errors, exact resume.

Map-style datasets visit a permutation that is a pure function of (seed, epoch) and are fetched as
(epoch, index) keys under their own seed (seeding.py), so a run restarted at any batch, with any number of
workers, sees the samples and augmentations an uninterrupted run would. Iterable datasets are read in the
training process; their position is restored with their own state_dict()/load_state_dict() when they have
them, or by iterating the epoch again (after set_epoch(epoch), when they have it) and skipping forward.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, default_collate

from ..errors import TaskError
from ..models.user import USER_CODE_ERRORS, defined_at, where, where_in_text
from .contract import batch_size
from .seeding import EVAL_EPOCH, SeededSamples, seeded_chunks


def describe_dataset(what: str, dataset: Any) -> str:
    """'task.train (MyDataset, file.py, line 12)' for messages."""
    at = defined_at(dataset)
    return f"{what} ({type(dataset).__name__}, {at})" if at else f"{what} ({type(dataset).__name__})"


def to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """The batch with every tensor in it moved to `device` (tuples, lists and dicts are walked)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return type(batch)({k: to_device(v, device, non_blocking) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, non_blocking) for v in batch)
    return batch


def _shapes(item: Any, path: str = "") -> dict[str, str]:
    """Each field of a sample (tensor, array or number) -> its shape and type, for comparing samples."""
    if isinstance(item, Mapping):
        return {k: v for key, value in item.items() for k, v in _shapes(value, f"{path}[{key!r}]").items()}
    if isinstance(item, (list, tuple)):
        return {k: v for i, value in enumerate(item) for k, v in _shapes(value, f"{path}[{i}]").items()}
    shape = getattr(item, "shape", None)
    return {path or "sample": f"{type(item).__name__} {tuple(shape)}" if shape is not None else type(item).__name__}


def mismatch(items: list[Any]) -> str:
    """Which field differs between the samples of a batch, or '' when they all match."""
    seen = [_shapes(item) for item in items]
    if any(s.keys() != seen[0].keys() for s in seen):
        other = next(i for i, s in enumerate(seen) if s.keys() != seen[0].keys())
        return f"sample 0 has fields {sorted(seen[0])}, sample {other} has {sorted(seen[other])}"
    for field in seen[0]:
        kinds = [s[field] for s in seen]
        other = next((i for i, k in enumerate(kinds) if k != kinds[0]), None)
        if other is not None:
            return f"field {field} is {kinds[0]} in sample 0 of the batch but {kinds[other]} in sample {other}"
    return ""


class CheckedCollate:
    """Collates a batch; samples that cannot be stacked become a TaskError naming the dataset and the field."""

    def __init__(self, collate: Callable[[list[Any]], Any] | None, origin: str):
        self.collate = collate
        self.origin = origin

    def __call__(self, items: list[Any]) -> Any:
        if self.collate is not None:
            try:
                return self.collate(items)
            except USER_CODE_ERRORS as exc:
                at = where(exc)
                raise TaskError(f"{self.origin}: the task's collate function failed: {type(exc).__name__}: {exc}"
                                + (f" ({at})" if at else "")) from None
        try:
            return default_collate(items)
        except (RuntimeError, TypeError, ValueError) as exc:
            problem = mismatch(items)
            if problem:
                raise TaskError(f"{self.origin}: samples of one batch differ: {problem}; give every sample the "
                                "same shape (pad or crop in the Dataset) or give the Task a collate function") from None
            raise TaskError(f"{self.origin}: its samples cannot be batched: {exc}") from None


class TaskBatches:
    """Batches of one split of a Task on the training device."""

    def __init__(self, dataset: Any, name: str, batch_size: int, device: torch.device, *, shuffle: bool,
                 seed: int, workers: int = 0, collate: Callable[[list[Any]], Any] | None = None):
        self.dataset = dataset
        self.name = name
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.seed = seed
        self.iterable = isinstance(dataset, IterableDataset)
        self.workers = 0 if self.iterable else workers  # an iterable is read in this process: its position is ours
        self.origin = describe_dataset(f"task.{name}", dataset)
        self.collate = CheckedCollate(collate, self.origin)
        self.samples: int | None = self._length()
        self.position = (0, 0)  # (epoch, samples read) of the iterable's current epoch
        self.resume_state: dict[str, Any] | None = None

    def _length(self) -> int | None:
        try:
            return len(self.dataset)
        except TypeError:
            if self.iterable:
                return None
            raise TaskError(f"{self.origin}: a map-style dataset needs __len__") from None

    def __len__(self) -> int:
        """Batches per epoch (the last one may be short); 0 when the dataset has no length."""
        return -(-self.samples // self.batch_size) if self.samples is not None else 0

    @property
    def batches_per_epoch(self) -> int | None:
        """Batches per epoch, None when the dataset has no length."""
        return len(self) if self.samples is not None else None

    def order(self, epoch: int) -> torch.Tensor:
        """Sample indices of `epoch` in visiting order (an iterable dataset orders itself: 0..n-1 records its size)."""
        n = self.samples or 0
        if self.iterable:
            return torch.arange(n)
        if not self.shuffle:
            return torch.arange(n)
        return torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 100_003 + epoch))

    def epoch(self, epoch: int, start: int = 0, order: torch.Tensor | None = None) -> Iterator[Any]:
        """Batches of `epoch` from batch `start` on, on the device."""
        pin = self.device.type == "cuda"
        if self.iterable:
            batches = map(self.collate, self._stream(epoch, start))
        else:
            order = self.order(epoch) if order is None else order
            keys = [(epoch, int(i)) for i in order[start * self.batch_size:].tolist()]
            loader = DataLoader(SeededSamples(self.dataset, self.seed), batch_size=self.batch_size, sampler=keys,
                                num_workers=self.workers, collate_fn=self.collate, pin_memory=pin,
                                generator=torch.Generator())  # its own generator: the global stream stays untouched
            batches = iter(loader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except TaskError as exc:
                raise unwrapped(exc) from None
            except USER_CODE_ERRORS as exc:
                raise self._read_error(exc) from None
            if self.iterable:
                self.position = (epoch, self.position[1] + batch_size(batch))
            yield to_device(batch, self.device, non_blocking=pin)

    def _stream(self, epoch: int, start: int) -> Iterator[list[Any]]:
        """The iterable dataset's items in batch-sized lists from batch `start` of `epoch` on."""
        state, self.resume_state = self.resume_state, None
        if hasattr(self.dataset, "set_epoch") and epoch >= 0:
            self.dataset.set_epoch(epoch)
        read = start * self.batch_size
        self.position = (epoch, read)
        restorable = hasattr(self.dataset, "load_state_dict")
        if start and state is not None and state.get("dataset") is not None and restorable \
                and state.get("epoch") == epoch and state.get("samples") == read:
            self.dataset.load_state_dict(state["dataset"])
            return seeded_chunks(self.dataset, self.seed, epoch, self.batch_size, start=read)
        return seeded_chunks(self.dataset, self.seed, epoch, self.batch_size, skip=read)

    def state(self) -> dict[str, Any] | None:
        """An iterable dataset's position for a checkpoint (its own state_dict() when it has one)."""
        if not self.iterable:
            return None
        epoch, read = self.position
        own = self.dataset.state_dict() if hasattr(self.dataset, "state_dict") else None
        return {"epoch": epoch, "samples": read, "dataset": own}

    def evaluation(self) -> Iterator[Any]:
        """Every batch in index order, under the evaluation seeds (the same at every evaluation)."""
        return self.epoch(EVAL_EPOCH, 0, order=torch.arange(self.samples or 0))

    def first_batch(self) -> Any:
        """The first batch in index order, read in this process (checks at setup and previews)."""
        try:
            if self.iterable:
                items = next(seeded_chunks(self.dataset, self.seed, EVAL_EPOCH, self.batch_size), [])
            else:
                keys = [(EVAL_EPOCH, i) for i in range(min(self.batch_size, self.samples or 0))]
                items = SeededSamples(self.dataset, self.seed).__getitems__(keys)
        except USER_CODE_ERRORS as exc:
            raise self._read_error(exc) from None
        if not items:
            raise TaskError(f"{self.origin} is empty")
        return to_device(self.collate(items), self.device)

    def _read_error(self, exc: BaseException) -> TaskError:
        """A failure inside the user's Dataset (here, or re-raised from a worker with its traceback as text)."""
        text = str(exc)
        if text.startswith("Caught "):  # DataLoader's wrapper: "Caught X in DataLoader worker ...\nOriginal Traceback"
            last = [line for line in text.splitlines() if line.strip()][-1]
            at = where_in_text(text)
            err = TaskError(f"{self.origin}: reading samples failed: {last.strip()}" + (f" ({at})" if at else ""))
        else:
            at = where(exc)
            err = TaskError(f"{self.origin}: reading samples failed: {type(exc).__name__}: {exc}"
                            + (f" ({at})" if at else ""))
        err.details = text if text.startswith("Caught ") else "".join(traceback.format_exception(exc))
        return err


def unwrapped(exc: TaskError) -> TaskError:
    """The one-line message of a TaskError a DataLoader worker re-raised with its traceback."""
    text = str(exc)
    if not text.startswith("Caught "):
        return exc
    last = [line for line in text.splitlines() if line.strip()][-1]
    _, sep, message = last.partition("TaskError: ")
    return TaskError(message.strip() if sep else text)
