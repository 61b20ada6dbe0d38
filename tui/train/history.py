"""Compact metric history for charts: growable numpy arrays, min/max reduction, cheap smoothing.

A million-step run holds a few arrays of a million numbers, not a million Python floats, and a redraw
touches only about two points per column of the plot. A history read from a run's log arrives already
reduced (each bucket's lowest and highest point, `Series.load`); points logged from then on follow it.
"""

from __future__ import annotations

import itertools

import numpy as np

_versions = itertools.count(1)  # unique across series, so a replaced series never looks unchanged


class Series:
    """An append-only (x, y) series in arrays that double when full, with running sums when it is smoothed."""

    def __init__(self, capacity: int = 1024, smoothed: bool = False):
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float32)
        # Prefix sums of finite y values and their counts (index i covers points [0, i)), for trailing means.
        # A point loaded from a reduced history stands for its share of a bucket's values (counts are fractions).
        self._sum = np.zeros(capacity + 1 if smoothed else 0, dtype=np.float64)
        self._count = np.zeros(capacity + 1 if smoothed else 0, dtype=np.float64)
        self.smoothed = smoothed
        self._n = 0
        self.version = next(_versions)  # changes whenever the points do; charts redraw only then
        self._nonfinite = 0  # how many y values are NaN or infinite (the reduction skips them only when needed)

    def __len__(self) -> int:
        return self._n

    @property
    def x(self) -> np.ndarray:
        """The x values so far (a view, not a copy)."""
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        """The y values so far (a view, not a copy)."""
        return self._y[: self._n]

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays, spare capacity included."""
        return self._x.nbytes + self._y.nbytes + self._sum.nbytes + self._count.nbytes

    def last(self) -> float | None:
        """The newest y value, or None when empty."""
        return float(self._y[self._n - 1]) if self._n else None

    def extend(self, xs, ys) -> None:
        """Append points (sequences of equal length)."""
        k = len(xs)
        if k == 0:
            return
        n, need = self._n, self._n + k
        if need > len(self._x):
            size = max(need, 2 * len(self._x))
            self._x = np.resize(self._x, size)
            self._y = np.resize(self._y, size)
            if self.smoothed:
                self._sum = np.resize(self._sum, size + 1)
                self._count = np.resize(self._count, size + 1)
        self._x[n:need] = xs
        self._y[n:need] = ys
        new = self._y[n:need]
        finite = np.isfinite(new)
        self._nonfinite += k - int(finite.sum())
        if self.smoothed:
            self._sum[n + 1:need + 1] = self._sum[n] + np.cumsum(np.where(finite, new, 0.0), dtype=np.float64)
            self._count[n + 1:need + 1] = self._count[n] + np.cumsum(finite)
        self._n = need
        self.version = next(_versions)

    def load(self, x: np.ndarray, y: np.ndarray, sums: np.ndarray | None = None,
             counts: np.ndarray | None = None) -> None:
        """Replace the points by a reduced history: `sums` and `counts` are each point's share of its bucket's
        finite values and their number (the point's own value and 1 when unreduced)."""
        self.clear()
        self.extend(x, y)
        if self.smoothed and sums is not None and counts is not None and len(x):
            self._sum[1: len(x) + 1] = np.cumsum(sums, dtype=np.float64)
            self._count[1: len(x) + 1] = np.cumsum(counts, dtype=np.float64)

    def append(self, x: float, y: float) -> None:
        """Append one point."""
        self.extend((x,), (y,))

    def truncate(self, max_x: float) -> None:
        """Drop points whose x is beyond `max_x` (a resumed run rewinds to its checkpoint)."""
        self._n = int(np.searchsorted(self.x, max_x, side="right"))
        self._nonfinite = int((~np.isfinite(self.y)).sum()) if self._nonfinite else 0
        self.version = next(_versions)

    def clear(self) -> None:
        """Forget every point."""
        self._n = 0
        self._nonfinite = 0
        self.version = next(_versions)

    def smoothed_at(self, idx: np.ndarray, window: int) -> np.ndarray:
        """Trailing mean over the `window` steps ending at each index in `idx` (non-finite skipped).

        The window is in x (steps), not points, so a reduced history and the points after it smooth alike.
        """
        if not self.smoothed:
            raise ValueError("this series keeps no running sums; create it with smoothed=True")
        hi = idx + 1
        lo = np.minimum(np.searchsorted(self.x, self.x[idx] - max(1, window), side="right"), idx)
        count = self._count[hi] - self._count[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((self._sum[hi] - self._sum[lo]) / count).astype(np.float32)

    def reduced(self, width: int, window: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, raw y as bucket min/max, smoothed y) with at most about 2*width points.

        A series without running sums gives its raw y as the smoothed one.
        """
        idx = minmax_indices(self.y, width, all_finite=not self._nonfinite)
        y = self._y[idx]
        return self._x[idx], y, self.smoothed_at(idx, window) if self.smoothed else y


def minmax_indices(y: np.ndarray, width: int, all_finite: bool | None = None) -> np.ndarray:
    """Indices of each bucket's min and max in order (all indices when y is short), so spikes survive."""
    n = len(y)
    if width <= 0 or n <= 2 * width:
        return np.arange(n)
    if all_finite is None:
        all_finite = bool(np.isfinite(y).all())
    size = -(-n // width)  # points per bucket
    full = n - n % size  # points in whole buckets; the rest form a shorter last bucket
    if all_finite:  # argmax/argmin straight on the data: no copies of a million-point array
        hi_src = lo_src = y
    else:  # non-finite values must never win a bucket
        finite = np.isfinite(y)
        hi_src, lo_src = np.where(finite, y, -np.inf), np.where(finite, y, np.inf)
    hi = hi_src[:full].reshape(-1, size).argmax(1)
    lo = lo_src[:full].reshape(-1, size).argmin(1)
    if full < n:
        hi = np.append(hi, hi_src[full:].argmax())
        lo = np.append(lo, lo_src[full:].argmin())
    base = np.arange(len(hi))[:, None] * size
    return (np.stack([np.minimum(lo, hi), np.maximum(lo, hi)], 1) + base).reshape(-1)


def bucket_minmax(x: np.ndarray, y: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) reduced to each bucket's min and max in x order."""
    idx = minmax_indices(y, width)
    return x[idx], y[idx]
