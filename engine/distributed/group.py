"""This process's place in the process group: init, device, the key-value store and the few collectives ptviz needs.

Gradients travel through DDP on the main group (NCCL for CUDA tensors, gloo for CPU ones). ptviz's own
traffic is small and goes through a second, gloo-only group (commands, heartbeats, checkpoint parts) and the
key-value store torchrun already runs (commands while paused, the start of the run, a failing rank's
traceback), so none of it ever waits on the GPU.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from ..errors import ConfigError, FieldError, UserError
from .env import RankEnv, from_environ, timeout_seconds
from .shard import Shard

POLL_SECONDS = 0.05  # how often a rank waiting on the store looks again (its waits have no deadline)

_ACTIVE: Ranks | None = None
# all_gather_single is the newer name of all_gather_into_tensor (which newer releases warn about).
all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def active() -> Ranks | None:
    """The process group ptviz joined in this process, or None (a single process)."""
    return _ACTIVE


def join() -> Ranks | None:
    """Join the process group the launcher set up (initialising it if no one has); None for a single process."""
    global _ACTIVE
    env = from_environ()
    if env is None or not env.multi:
        return None
    if _ACTIVE is None or not dist.is_initialized():
        if env.job_id:
            die_with_parent()
        _ACTIVE = Ranks(env)
    return _ACTIVE


def die_with_parent() -> None:
    """Under torchrun, end with the agent: workers run in sessions of their own, so a SIGKILLed agent would
    otherwise leave them training (Linux only; elsewhere the agent's own shutdown ends them)."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG: SIGKILL when the parent exits
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the agent was gone before the line above ran
        os.kill(os.getpid(), signal.SIGKILL)


def _attempt_store(env: RankEnv, seconds: float | None) -> dist.Store | None:
    """torchrun's own store, under a prefix of this attempt; None outside torchrun's shared store.

    Workers of torchrun's c10d rendezvous share the agent's store across restarts without a per-attempt prefix,
    so a restarted rank can read the address a dead rank of the attempt before left there and fail to connect
    (gloo's "Connection refused", pytorch issue 167288). Keys under the attempt's own prefix avoid that.
    """
    import os

    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True" or "MASTER_ADDR" not in os.environ:
        return None
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), env.world_size,
                          is_master=False, timeout=timedelta(seconds=seconds or 1800))
    return dist.PrefixStore(f"ptviz/attempt-{env.restart}/", store)


class Ranks:
    """Rank, world size, device, store and the collectives of one multi-rank run."""

    def __init__(self, env: RankEnv):
        self.env = env
        self.rank, self.world = env.rank, env.world_size
        self.owns_group = not dist.is_initialized()
        if self.owns_group:
            # One group for both kinds of tensor: CPU ones through gloo, CUDA ones through NCCL.
            backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
            seconds = timeout_seconds()
            kwargs: dict[str, Any] = {"timeout": timedelta(seconds=seconds)} if seconds else {}
            store = _attempt_store(env, seconds)
            if store is not None:
                kwargs.update(store=store, rank=env.rank, world_size=env.world_size)
            dist.init_process_group(backend, **kwargs)
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.ctl = dist.new_group(backend="gloo")  # ptviz's own CPU traffic, apart from the gradients
        # Keys of this attempt only: a restarted job must never read the commands of the one before.
        self.store = dist.PrefixStore(f"ptviz/{env.restart}/", dist.distributed_c10d._get_default_store())
        self.device = torch.device("cpu")
        self.idle = threading.Event()  # never set: waits on it are interruptible pauses between store polls
        self.hosts: list[dict[str, Any]] = []  # per rank: host, device, pid (rank 0 reads them at the start)

    @property
    def leader(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    @property
    def train_shard(self) -> Shard:
        """This rank's part of each training epoch."""
        return Shard(self.rank, self.world, pad=True)

    # ------------------------------------------------------------------------- device

    def use_device(self, name: str) -> torch.device:
        """The device this rank trains on for train.device `name`: its own GPU (LOCAL_RANK) on CUDA, else the CPU."""
        if name == "mps":
            raise ConfigError([FieldError("train.device", name, "MPS cannot train across several processes; "
                                          "use cpu, or cuda on a machine with NVIDIA GPUs")])
        if name in ("auto", "cuda") and torch.cuda.is_available():
            count = torch.cuda.device_count()
            local = self.env.local_rank
            if local >= count:
                raise ConfigError([FieldError("train.device", name, f"local rank {local} has no GPU: this machine has "
                                              f"{count}; start at most {count} processes per machine")])
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        elif name == "cuda":
            raise ConfigError([FieldError("train.device", name, "CUDA is not available on this machine; use auto or cpu")])
        else:
            self.device = torch.device("cpu")
        return self.device

    def announce(self, device_name: str) -> None:
        """Tell rank 0 where this rank runs (host, device, pid); rank 0 collects every rank's."""
        import os

        info = {"rank": self.rank, "host": socket.gethostname(), "device": str(self.device),
                "device_name": device_name, "pid": os.getpid(), "local_rank": self.env.local_rank}
        self.store.set(f"host/{self.rank}", json.dumps(info))
        if self.leader:
            self.wait_for([f"host/{r}" for r in range(self.world)])
            self.hosts = [json.loads(self.store.get(f"host/{r}")) for r in range(self.world)]

    def reseed(self, seed: int) -> None:
        """Seed this rank's random streams from (seed, rank): the replicas agree on weights, not on dropout."""
        from ..tasks.seeding import reseed, sample_seed

        value = sample_seed(seed, -2, self.rank)
        reseed(value)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(value)

    # ------------------------------------------------------------------------- failures

    def failure(self, message: str, details: str, exc: BaseException) -> tuple[str, str, int]:
        """(message, traceback, rank) of the run's first failure: this rank's, or the one another rank told first.

        Every rank leaves its failure in the store before it exits (the first one told wins); rank 0, whose
        own error is often only the consequence (a peer that left mid-collective), reports the first.
        """
        told = {"rank": self.rank, "message": message, "traceback": details}
        if self.leader and isinstance(exc, UserError):
            return message, details, 0  # bad input fails every rank alike: say it once, as a single process would
        try:
            if int(self.store.add("failures", 1)) == 1:
                self.store.set("failure", json.dumps(told))
            elif self.store.check(["failure"]):
                told = json.loads(self.store.get("failure"))
        except Exception:  # noqa: BLE001 - the store went with its host: this rank's own error is all there is
            pass
        if told["rank"] == self.rank and isinstance(exc, dist.DistError):
            told["message"] = f"another rank stopped answering (it was killed, or its machine is gone): {message}"
        rank = int(told["rank"])
        text = told["message"] if rank == self.rank else f"rank {rank} failed: {told['message']}"
        return text, told["traceback"], rank

    # ------------------------------------------------------------------------- the store

    def wait_for(self, keys: list[str]) -> None:
        """Wait until every key is in the store, for as long as it takes (a slow rank may still be loading)."""
        while not self.store.check(keys):
            self.idle.wait(POLL_SECONDS)

    def meet(self, name: str) -> None:
        """Every rank waits here until all have arrived, without a deadline (unlike a collective's barrier)."""
        self.store.set(f"{name}/{self.rank}", "1")
        self.wait_for([f"{name}/{r}" for r in range(self.world)])

    # ------------------------------------------------------------------------- collectives

    def broadcast_bytes(self, data: bytes | None) -> bytes:
        """Rank 0's `data` on every rank (CPU, through the control group)."""
        size = torch.tensor([len(data or b"") if self.leader else 0], dtype=torch.int64)
        dist.broadcast(size, src=0, group=self.ctl)
        if int(size) == 0:
            return b""
        if self.leader:
            buffer = torch.frombuffer(bytearray(data or b""), dtype=torch.uint8)
        else:
            buffer = torch.empty(int(size), dtype=torch.uint8)
        dist.broadcast(buffer, src=0, group=self.ctl)
        return buffer.numpy().tobytes()

    def gather_bytes(self, data: bytes) -> list[bytes] | None:
        """Every rank's `data` on rank 0, in rank order (None on the others)."""
        sizes = torch.zeros(self.world, dtype=torch.int64)
        all_gather(sizes, torch.tensor([len(data)], dtype=torch.int64), group=self.ctl)
        longest = max(1, int(sizes.max()))
        mine = torch.zeros(longest, dtype=torch.uint8)
        if data:
            mine[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        parts = [torch.empty(longest, dtype=torch.uint8) for _ in range(self.world)] if self.leader else None
        dist.gather(mine, parts, dst=0, group=self.ctl)
        if parts is None:
            return None
        return [part[: int(n)].numpy().tobytes() for part, n in zip(parts, sizes.tolist())]

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over the ranks, in place, on its own device (the caller's next read is the sync)."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's `rows` (same shape on each rank) stacked in rank order, on every rank."""
        out = torch.empty((self.world * rows.shape[0], *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        all_gather(out, rows.contiguous())
        return out

    def close(self) -> None:
        """Leave the process group (only one ptviz started itself)."""
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None
        if self.owns_group and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - a group whose peers are gone cannot always be taken down cleanly
                pass
