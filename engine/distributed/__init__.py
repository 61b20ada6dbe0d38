"""Scale-out on PyTorch's own engine: torchrun starts the ranks, DDP syncs gradients, rank 0 owns the run.

env.py reads what the launcher told a process (no torch), group.py joins the process group, start.py
agrees on the run, shard.py splits the data, exchange.py carries commands and heartbeats between the ranks,
ddp.py wraps the model, states.py puts every rank into the checkpoint. `--nproc` (tui/launch.py) calls
torchrun itself.
"""
