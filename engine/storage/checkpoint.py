"""Checkpoints: written atomically, read with weights_only=True so no file can run code."""

from __future__ import annotations

import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

FORMAT = "ptviz-checkpoint/1"
REQUIRED = ("config", "model", "optimizer", "step", "epoch", "batch_in_epoch", "order", "epoch_totals", "rng")


def fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: Path, sync_folder: bool = True) -> Path:
    """torch.save to a temp file in the same folder, fsync, rename over `path`, fsync the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_folder:
        fsync_dir(path.parent)
    return path


def save_once(obj: Any, paths: list[Path]) -> list[Path]:
    """Serialize `obj` once, into paths[0] (atomically, fsynced), and give the other names the same file.

    The other names are hard links (a copy where the filesystem has none), each put in place by rename.
    No checkpoint file is ever written in place, so replacing or deleting one name (a newer last.pt,
    pruning old epochs) never changes what another name holds.
    """
    first = atomic_save(obj, paths[0], sync_folder=False)
    for path in paths[1:]:
        link_or_copy(first, path)
    for folder in {Path(p).parent for p in paths}:
        fsync_dir(folder)
    return [Path(p) for p in paths]


def link_or_copy(src: Path, dst: Path) -> None:
    """Make `dst` name the file `src` names: a hard link, or a durable copy; renamed over `dst` atomically."""
    dst = Path(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # no hard links on this filesystem (some network or FAT mounts)
            shutil.copyfile(src, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states in a form weights_only loading accepts."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() captured."""
    random.setstate(tuple(state["python"][:1]) + (tuple(state["python"][1]),) + tuple(state["python"][2:]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint on the CPU; CheckpointError for anything that is not a valid one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (an interrupted write?)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported content"
        raise CheckpointError(f"{path}: refused: it holds objects a checkpoint never contains ({first[:200]})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail the reader in any way
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt): {str(exc)[:200]}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ptviz checkpoint (no {FORMAT!r} marker)")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint: missing {', '.join(missing)}")
    return data


def stored_checkpoints(folder: Path) -> list[Path]:
    """The checkpoint files in `folder`, newest first (by modification time, last.pt first on ties)."""
    files = [p for p in Path(folder).glob("*.pt") if p.is_file()]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name == "last.pt"), reverse=True)


def load_newest(run_dir: Path) -> tuple[dict[str, Any], Path, list[str]]:
    """The newest valid checkpoint of a run, its path, and why each newer file was skipped."""
    folder = Path(run_dir) / "checkpoints"
    skipped: list[str] = []
    for path in stored_checkpoints(folder):
        try:
            return load_checkpoint(path), path, skipped
        except CheckpointError as exc:
            skipped.append(str(exc))
    found = "; ".join(skipped) if skipped else f"{folder} holds no *.pt files"
    raise CheckpointError(f"{run_dir}: no usable checkpoint ({found})")


def remove_stale_temp_files(folder: Path) -> None:
    """Delete temp files left by a save that was killed before its rename."""
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def prune_numbered(folder: Path, keep: int, prefix: str = "epoch-") -> None:
    """Keep the newest `keep` numbered checkpoints; call only after the newest is durably saved."""
    numbered = sorted(Path(folder).glob(f"{prefix}*.pt"))
    for old in numbered[:-keep] if keep > 0 else numbered:
        old.unlink(missing_ok=True)
