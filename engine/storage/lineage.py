"""Where a forked run came from: parent.json in the child's folder names the parent, checkpoint and step."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .runlog import read_json, write_json

PARENT_JSON = "parent.json"


@dataclass(frozen=True)
class Lineage:
    """A fork's parent run and the point it branched from."""

    parent: str  # the parent's folder, as given when forking (absolute)
    checkpoint: str  # the checkpoint's file name, e.g. epoch-0003.pt
    step: int  # the parent's step at that checkpoint: the child's first step is step + 1
    epoch: int  # whole epochs the parent had finished at that checkpoint
    changed: dict[str, list[Any]] = field(default_factory=dict)  # field path -> [parent's value, child's]

    @property
    def parent_name(self) -> str:
        """The parent folder's name."""
        return Path(self.parent).name


def write_lineage(run_dir: Path, lineage: Lineage) -> None:
    """Record the child's parent in its folder."""
    write_json(Path(run_dir) / PARENT_JSON, asdict(lineage), durable=True)


def read_lineage(run_dir: Path) -> Lineage | None:
    """The run's parent, or None for a run that was not forked (or whose parent.json is unreadable)."""
    data = read_json(Path(run_dir) / PARENT_JSON)
    try:
        return Lineage(parent=str(data["parent"]), checkpoint=str(data.get("checkpoint", "")),
                       step=int(data["step"]), epoch=int(data.get("epoch", 0)),
                       changed={str(k): list(v) for k, v in dict(data.get("changed") or {}).items()
                                if isinstance(v, list)})
    except (KeyError, TypeError, ValueError):
        return None
