"""Histograms of weights and gradients computed on the device (bucket edges and counts without a host sync),
for TensorBoard's add_histogram_raw."""

from __future__ import annotations

import torch

from ..events import Histogram

BUCKETS = 30
WIDTH = 4 + 2 * BUCKETS + 1  # min, max, sum, sum of squares, bucket edges, bucket counts


def summarize(tensor: torch.Tensor) -> torch.Tensor:
    """[min, max, sum, sum of squares, BUCKETS + 1 edges, BUCKETS counts] of a tensor's values, on its device."""
    x = tensor.detach().reshape(-1).float()
    lo, hi = x.min(), x.max()
    edges = lo + (hi - lo) * torch.linspace(0, 1, BUCKETS + 1, device=x.device)
    # The bucket of each value as an index, counted with index_add_: bincount would read the largest index first.
    index = torch.bucketize(x, edges[1:-1], right=True)
    counts = torch.zeros(BUCKETS, device=x.device).index_add_(0, index, torch.ones_like(x))
    return torch.cat([torch.stack([lo, hi, x.sum(), (x * x).sum()]), edges, counts])


def decode(tag: str, numel: int, values: list[float]) -> Histogram:
    """The Histogram of one summarize() result read to the host."""
    lo, hi, total, squares = values[:4]
    edges = values[4:4 + BUCKETS + 1]
    counts = values[5 + BUCKETS:]
    return Histogram(tag, lo, hi, numel, total, squares, tuple(edges[1:]), tuple(counts))
