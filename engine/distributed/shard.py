"""Each rank's part of an epoch: every world_size-th sample of the epoch's order, starting at its rank.

Training pads the order to a multiple of the world size with its own first samples (as DistributedSampler
does), so every rank takes the same number of steps; evaluation never pads, so no sample counts twice.
A rank's samples are a pure function of (seed, epoch, rank, world size): the order itself depends on
(seed, epoch) only, and the same order re-shards for another world size on resume.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shard:
    """Rank `rank` of `world` ranks; `pad` evens the parts out (training) or not (evaluation)."""

    rank: int
    world: int
    pad: bool = True

    def size(self, n: int) -> int:
        """How many of n samples this rank sees per epoch."""
        if self.pad:
            return -(-n // self.world)
        return len(range(self.rank, n, self.world))

    def of(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's samples of an epoch whose full order is `order`, in visiting order."""
        n = order.shape[0]
        if self.pad and n % self.world:
            extra = self.world - n % self.world
            order = torch.cat([order, order[:extra].repeat(-(-extra // max(1, n)))[:extra]]) if n else order
        return order[self.rank::self.world]

    def global_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """Places in the full order of this rank's places `positions` (the same device and dtype)."""
        return positions * self.world + self.rank

    @property
    def evaluation(self) -> Shard:
        """The same rank's part without padding."""
        return Shard(self.rank, self.world, pad=False)
