"""What a launcher (torchrun, or any that sets RANK and WORLD_SIZE) told this process; no torch import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

TIMEOUT_VARIABLE = "PTVIZ_DIST_TIMEOUT"  # seconds before a collective that waits for a missing rank fails


@dataclass(frozen=True)
class RankEnv:
    """This process's place in a launched job."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    restart: int  # how often torchrun's agent restarted the workers of this job (0: first attempt)
    job_id: str  # the rendezvous id, the same for every attempt of one job ("" outside torchrun)

    @property
    def leader(self) -> bool:
        """Whether this process is rank 0, which owns the run folder, logs, socket and checkpoints."""
        return self.rank == 0

    @property
    def multi(self) -> bool:
        """Whether there is more than one rank (world size 1 trains exactly as a plain process does)."""
        return self.world_size > 1


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(environ.get(name, default))
    except ValueError:
        return default


def from_environ(environ: Mapping[str, str] | None = None) -> RankEnv | None:
    """The launcher's variables, or None when no launcher started this process."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    world = max(1, _int(environ, "WORLD_SIZE", 1))
    rank = _int(environ, "RANK", 0)
    return RankEnv(rank=rank, world_size=world, local_rank=_int(environ, "LOCAL_RANK", 0),
                   local_world_size=_int(environ, "LOCAL_WORLD_SIZE", 1),
                   restart=_int(environ, "TORCHELASTIC_RESTART_COUNT", 0),
                   job_id=environ.get("TORCHELASTIC_RUN_ID", ""))


def is_follower(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process is a rank other than 0 of a multi-rank job (it takes the run from rank 0)."""
    env = from_environ(environ)
    return env is not None and env.multi and not env.leader


def timeout_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """PTVIZ_DIST_TIMEOUT as seconds, or None for PyTorch's default (10 minutes for NCCL, 30 for gloo)."""
    text = (os.environ if environ is None else environ).get(TIMEOUT_VARIABLE, "").strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None
