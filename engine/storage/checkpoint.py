"""Checkpoints: written atomically, read with weights_only=True so no file can run code.

A checkpoint is torch's zip format, whose records each carry a CRC-32 of their bytes; loading checks
every record against it before unpickling, so a flipped bit or a torn write is refused, never trained on.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import re
import shutil
import zipfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError

FORMAT = "ptviz-checkpoint/1"
REQUIRED = ("config", "model", "optimizer", "step", "epoch", "batch_in_epoch", "order", "epoch_totals", "rng")
TEMP_GLOB = ".*.tmp"  # atomic_save's and the logs' temp files: `.<name>.<pid>.tmp`


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


class _RecordingWriter:
    """A file's write() that keeps the OSError it raised: torch.save reports that only as 'unexpected pos'."""

    def __init__(self, fh: Any):
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def _with_crc32() -> AbstractContextManager:
    """torch computes each record's CRC-32 unless someone turned that off; load_checkpoint relies on it."""
    try:
        from torch.utils.serialization import config
    except ImportError:
        return nullcontext()
    return nullcontext() if config.save.compute_crc32 else config.patch({"save.compute_crc32": True})


def atomic_save(obj: Any, path: Path, sync_folder: bool = True) -> Path:
    """torch.save to a temp file in the same folder, fsync, rename over `path`, fsync the folder.

    A failed write raises the OSError behind it (errno.ENOSPC for a full disk) and leaves `path` as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            writer = _RecordingWriter(fh)
            try:
                with _with_crc32():
                    torch.save(obj, writer)
            except Exception:
                if writer.error is not None:
                    raise writer.error from None
                raise
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


def describe_os_error(exc: OSError, folder: Path | str) -> str:
    """What a failed write means for the user: 'no space left on <folder>' for a full disk."""
    if exc.errno == errno.ENOSPC:
        return f"no space left on {folder}"
    if exc.errno == errno.EDQUOT:
        return f"disk quota exceeded on {folder}"
    return f"cannot write to {folder}: {exc.strerror or exc}"


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


def check_rng_state(state: Any) -> str:
    """Why `state` is not an RNG state set_rng_state() can restore ('' when it is); the current state is kept."""
    current = rng_state()
    try:
        set_rng_state(state)
    except Exception as exc:  # noqa: BLE001 - any malformed part fails its setter in its own way
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    finally:
        set_rng_state(current)
    return ""


def _verify_records(path: Path) -> None:
    """Check every record of a checkpoint's zip against its stored CRC-32; CheckpointError names the first bad one."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise CheckpointError(f"{path}: not a ptviz checkpoint (record {info.filename} is compressed)")
                try:
                    with archive.open(info) as record:
                        while record.read(1 << 20):
                            pass
                except zipfile.BadZipFile:
                    raise CheckpointError(
                        f"{path}: damaged: the data of {info.filename} ({info.file_size:,} bytes) does not match "
                        f"the checksum stored with it (a flipped bit or an incomplete write); not loaded") from None
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt): {str(exc)[:200]}") from None


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
_UNPICKLER = re.compile(r"WeightsUnpickler error: (.+?)(?: Please use| Check the documentation|$)", re.S)


def refusal(exc: BaseException) -> str:
    """What a weights_only load refused, from torch's message, without torch's advice on how to load it anyway."""
    text = str(exc)
    found = _GLOBAL.search(text)
    if found:
        return f"it names {found.group(1)}, code that a checkpoint never contains"
    found = _UNPICKLER.search(text)
    what = " ".join(found.group(1).split())[:200] if found else ""
    if what and "weights_only" not in what:
        return f"it holds content a checkpoint never contains ({what})"
    return "it holds content a checkpoint never contains"


def _read(path: Path, mmap: bool = False) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: refused: {refusal(exc)}; nothing in the file was run") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file can fail the reader in any way
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt): {str(exc)[:200]}") from None


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Read a checkpoint on the CPU; CheckpointError for anything that is not a valid one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (an interrupted write?)")
    zipped = zipfile.is_zipfile(path)
    if zipped:
        _verify_records(path)
    data = _read(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ptviz checkpoint (no {FORMAT!r} marker)")
    if not zipped:  # torch's legacy format: loadable, but without the checksums every ptviz checkpoint has
        raise CheckpointError(f"{path}: not a ptviz checkpoint (torch's legacy format, which carries no checksums)")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint: missing {', '.join(missing)}")
    problem = position_problem(data)
    if problem:
        raise CheckpointError(f"{path}: invalid position: {problem}")
    return data


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def position_problem(state: dict[str, Any]) -> str:
    """Why a checkpoint's position in its run cannot be right ('' when it can): counts, order and totals."""
    for key in ("step", "epoch", "batch_in_epoch"):
        if not _whole(state[key]):
            return f"{key} is {state[key]!r}, not a whole number ≥ 0"
    accumulate = _saved_accumulate(state)  # with train.accumulate, a step is that many batches
    if state["batch_in_epoch"] > state["step"] * accumulate:
        per_step = f" × {accumulate} batches a step" if accumulate > 1 else ""
        return f"batch_in_epoch {state['batch_in_epoch']} is past step {state['step']}{per_step}"
    order = state["order"]
    if not isinstance(order, torch.Tensor) or order.dim() != 1 or order.dtype != torch.int64:
        return "order is not a list of sample indices"
    if not torch.equal(torch.sort(order).values, torch.arange(order.numel())):
        return f"order is not a permutation of the {order.numel():,} training samples"
    totals = state["epoch_totals"]
    if not isinstance(totals, dict) or not all(_whole(totals.get(k)) for k in ("seen", "batches")):
        return "epoch_totals lacks whole-number counts of samples and batches"
    if not all(isinstance(totals.get(k), torch.Tensor) and totals[k].dim() == 0 for k in ("loss", "correct")):
        return "epoch_totals lacks the epoch's loss and correct-prediction sums"
    if totals["batches"] > state["batch_in_epoch"]:
        return f"epoch_totals counts {totals['batches']} batches, more than batch_in_epoch {state['batch_in_epoch']}"
    return ""


def _saved_accumulate(state: dict[str, Any]) -> int:
    """The train.accumulate the checkpoint was written with (1 when it does not say)."""
    config = state.get("config")
    train = config.get("train") if isinstance(config, dict) else None
    value = train.get("accumulate", 1) if isinstance(train, dict) else 1
    return value if _whole(value) and value >= 1 else 1


def _order_key(path: Path) -> tuple[bool, int, int, int]:
    """(unreadable, step, save sequence, mtime) of a checkpoint, read without loading its tensors.

    Unreadable files sort first, so load_newest tries them and says why each was skipped.
    """
    mtime = path.stat().st_mtime_ns
    try:
        data = _read(path, mmap=True)  # tensors stay on disk: only the small pickle is read
    except CheckpointError:
        return True, 0, 0, mtime
    if not isinstance(data, dict) or not _whole(data.get("step")):
        return True, 0, 0, mtime
    seq = data.get("save_seq")
    return False, data["step"], seq if _whole(seq) else -1, mtime


def stored_checkpoints(folder: Path) -> list[Path]:
    """The checkpoint files in `folder`, newest first: by step, then save order (mtime only for older files)."""
    files = [p for p in Path(folder).glob("*.pt") if p.is_file()]
    keys = {p: _order_key(p) for p in files}
    return sorted(files, key=lambda p: (keys[p], p.name == "last.pt"), reverse=True)


def load_newest(run_dir: Path) -> tuple[dict[str, Any], Path, list[str]]:
    """The newest valid checkpoint of a run, its path, and why each newer file was skipped."""
    folder = Path(run_dir) / "checkpoints"
    skipped: list[str] = []
    for path in stored_checkpoints(folder):
        try:
            return load_checkpoint(path), path, skipped
        except CheckpointError as exc:
            skipped.append(str(exc))
    found = "; ".join(skipped) if skipped else f"{folder} holds no checkpoint (*.pt) files"
    raise CheckpointError(f"{run_dir}: no usable checkpoint ({found})")


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete temp files left by a save that was killed before its rename (call only while no run writes here)."""
    removed = []
    for tmp in Path(folder).glob(TEMP_GLOB):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def prune_numbered(folder: Path, keep: int, prefix: str = "epoch-") -> None:
    """Keep the newest `keep` numbered checkpoints; call only after the newest is durably saved."""
    numbered = sorted(Path(folder).glob(f"{prefix}*.pt"))
    for old in numbered[:-keep] if keep > 0 else numbered:
        old.unlink(missing_ok=True)
