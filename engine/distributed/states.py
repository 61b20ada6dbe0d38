"""Every rank's part of a checkpoint: its RNG state, epoch totals and data position, gathered on rank 0.

DDP keeps the replicas identical, so rank 0's model, optimizer and schedule stand for all. What differs
per rank is saved under "ranks" (one entry per rank), and a resumed rank takes its own entry back. The
entries travel as torch.save bytes and are read with weights_only=True, like a checkpoint file.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING, Any

import torch

from ..storage import checkpoint as ckpt
from .group import Ranks

if TYPE_CHECKING:
    from ..loop import Trainer


def own_entry(trainer: Trainer) -> dict[str, Any]:
    """This rank's part of the checkpoint being written."""
    return {
        "rank": trainer.ranks.rank if trainer.ranks else 0,
        "rng": ckpt.rng_state(),
        "epoch_totals": trainer.epoch_totals(),
        "data": trainer.s.data_state(),
    }


def fingerprint(model: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer's bytes, in name order: equal only for bit-for-bit equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().reshape(-1).cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def to_bytes(obj: Any) -> bytes:
    """`obj` as torch.save writes it."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> Any:
    """What to_bytes wrote, read with weights_only=True."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def gather_entries(ranks: Ranks, entry: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every rank's entry on rank 0, in rank order (None on the others)."""
    parts = ranks.gather_bytes(to_bytes(entry))
    return None if parts is None else [from_bytes(part) for part in parts]


def entry_for(state: dict[str, Any], rank: int, world: int) -> tuple[dict[str, Any] | None, str]:
    """This rank's entry of a checkpoint, and a notice when the world size changed (then the run is inexact)."""
    entries = state.get("ranks")
    saved = int(state.get("world_size", 1) or 1)
    if saved == world and entries and len(entries) == world:
        return entries[rank], ""
    notice = (f"the checkpoint was written by {saved} process(es) and {world} continue it: each rank's data and "
              f"random streams differ from the original run's, so the result is no longer bit-exact")
    if entries:
        return entries[rank % len(entries)], notice
    return None, notice


def rescaled_position(batch_in_epoch: int, saved_world: int, world: int, batches_per_epoch: int | None) -> int:
    """The batch of the epoch at the same share of it, for a different number of ranks."""
    position = batch_in_epoch * saved_world // max(1, world)
    return min(position, batches_per_epoch) if batches_per_epoch is not None else position
