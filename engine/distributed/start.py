"""How the ranks agree on one run before training: rank 0 decides, the others take its decision.

Rank 0 brings the configuration, the run folder and the checkpoint to continue from (a resume, or the
newest checkpoint of its own folder when torchrun's agent restarted the job); it puts the configuration in
the key-value store and broadcasts the checkpoint. The others never read the run folder: on another machine
it may not even exist. Waits here have no deadline, since rank 0 may take long to load the data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import config as cfgmod
from ..config import RunConfig
from ..errors import CheckpointError
from ..storage import logrows
from ..storage.checkpoint import load_newest
from ..storage.runlog import METRICS_CSV, METRICS_JSONL
from .group import Ranks
from .states import from_bytes, to_bytes

JOBS_DIR = ".elastic"  # under output.runs_dir: one file per torchrun job id, naming the job's run folder


@dataclass
class Agreed:
    """What every rank trains: rank 0's configuration, folder (only rank 0 writes it) and checkpoint."""

    config: RunConfig
    resume: dict[str, Any] | None
    run_dir: Path | None  # on ranks other than 0 only a marker that rank 0 keeps a folder
    notices: list[str] = field(default_factory=list)


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """The RunConfig of RunConfig.to_dict()."""
    config = RunConfig()
    if isinstance(data.get("recipe"), str):
        config.recipe = data["recipe"]
    return cfgmod.apply_dict(config, data, source="rank 0")


def job_file(config: RunConfig, job_id: str) -> Path:
    """Where rank 0 notes the run folder of torchrun job `job_id` (so a restarted job finds it again)."""
    return Path(config.output.runs_dir) / JOBS_DIR / job_id.replace("/", "_")


def note_job(config: RunConfig, job_id: str, run_dir: Path) -> None:
    """Remember `run_dir` as the folder of job `job_id` (rank 0, once the folder exists)."""
    if not job_id or not config.output.runs_dir:
        return
    path = job_file(config, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(str(Path(run_dir).resolve()))
    tmp.replace(path)


def restarted_run(config: RunConfig, job_id: str, restart: int) -> tuple[Path | None, dict[str, Any] | None, list[str]]:
    """The folder and newest checkpoint of a job torchrun's agent restarted (None when it had no folder yet)."""
    path = job_file(config, job_id)
    if not job_id or not config.output.runs_dir or not path.is_file():
        return None, None, []
    run_dir = Path(path.read_text().strip())
    if not run_dir.is_dir():
        return None, None, []
    try:
        state, checkpoint, _ = load_newest(run_dir)
    except CheckpointError:
        # Killed before its first checkpoint: it starts over in its own folder, with the logs of that attempt cut.
        logrows.rewrite(run_dir / METRICS_JSONL, [])
        (run_dir / METRICS_CSV).unlink(missing_ok=True)
        return run_dir, None, [f"restart {restart}: the run had no checkpoint yet; it starts over in {run_dir}"]
    return run_dir, state, [f"restart {restart}: continuing from {checkpoint.name} at step {state['step']}"]


def agree(ranks: Ranks, config: RunConfig, resume: dict[str, Any] | None, run_dir: Path | None) -> Agreed:
    """Rank 0's run on every rank (a collective: every rank calls it once, before building anything)."""
    notices: list[str] = []
    if ranks.leader:
        if ranks.env.restart and resume is None and run_dir is None:
            run_dir, resume, notices = restarted_run(config, ranks.env.job_id, ranks.env.restart)
        record = {"config": config.to_dict(), "run_dir": str(run_dir) if run_dir else "",
                  "folder": bool(run_dir is not None or config.output.runs_dir)}
        ranks.store.set("start", json.dumps(record))
    else:
        ranks.wait_for(["start"])
        record = json.loads(ranks.store.get("start"))
        config = config_from_dict(record["config"])
        run_dir = Path(record["run_dir"] or config.output.runs_dir or ".") if record["folder"] else None
    payload = ranks.broadcast_bytes(to_bytes(resume) if ranks.leader and resume is not None else None)
    if not ranks.leader:
        resume = from_bytes(payload) if payload else None
    return Agreed(config, resume, run_dir, notices)
