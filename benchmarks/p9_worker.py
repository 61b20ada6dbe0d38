"""One process of P9, started by torchrun (or alone for one process): times training steps, rank 0 writes JSON.

    python -m torch.distributed.run --standalone --nproc-per-node 2 benchmarks/p9_worker.py --side hand ...

`--side hand` is PyTorch's DDP tutorial loop (init_process_group, DistributedDataParallel, a sampler's shard
of each epoch, zero_grad / forward / backward / step), over the same in-memory MNIST-shaped images, model,
normalisation, batch size and optimizer as `--side ptviz`, which runs ptviz.engine.loop.train under the same
launcher. Both time the steps between WARMUP and the last step of the epoch on rank 0's clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WARMUP = 10  # steps before the clock starts (allocator, DDP's first buckets)


def config(root: str, batch: int, log_interval: int):
    """The ptviz run both sides mirror: the tutorial's MLP on MNIST-shaped data, one epoch, no run folder."""
    from ptviz.engine.recipes import recipe

    cfg = recipe("mnist-mlp")
    cfg.data.root, cfg.data.batch_size = root, batch
    cfg.train.epochs, cfg.train.log_interval = 1, log_interval
    cfg.output.runs_dir = ""
    return cfg


def ptviz_side(args) -> dict:
    from ptviz.engine.events import StepMetrics
    from ptviz.engine.loop import train

    points: list[tuple[int, float]] = []

    class Steps:
        def emit(self, event):
            if isinstance(event, StepMetrics):
                points.append((event.last_step, event.elapsed))

    train(config(args.root, args.batch, args.log_interval), sink=Steps())
    start = next((s, t) for s, t in points if s >= WARMUP)
    end = points[-1]
    return {"steps": end[0] - start[0], "seconds": end[1] - start[1]}


def hand_side(args) -> dict:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data.distributed import DistributedSampler

    from ptviz.engine.data import sources
    from ptviz.engine.models.mlp import MNISTNet

    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if world > 1 else 0
    bundle = sources.load(config(args.root, args.batch, args.log_interval).data)
    images, labels = bundle.train.images, bundle.train.labels
    torch.manual_seed(0)
    model = MNISTNet()
    ddp = DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.01)
    sampler = DistributedSampler(range(len(labels)), num_replicas=world, rank=rank, shuffle=True, seed=0)
    sampler.set_epoch(0)
    order = torch.tensor(list(sampler))
    clock, steps = 0.0, 0
    for step, start in enumerate(range(0, len(order), args.batch), 1):
        index = order[start:start + args.batch]
        x = images[index].float().div_(255).sub_(0.5).div_(0.5)  # ToTensor + Normalize(0.5, 0.5), per batch
        optimizer.zero_grad()
        loss = F.cross_entropy(ddp(x), labels[index])
        loss.backward()
        optimizer.step()
        if step == WARMUP:
            clock = time.perf_counter()
        steps = step
    seconds = time.perf_counter() - clock
    if world > 1:
        dist.destroy_process_group()
    return {"steps": steps - WARMUP, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=("hand", "ptviz"), required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = hand_side(args) if args.side == "hand" else ptviz_side(args)
    if int(os.environ.get("RANK", "0")) == 0:
        result["world"] = int(os.environ.get("WORLD_SIZE", "1"))
        Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
