"""A series kept in a bounded number of buckets (mean, min and max each), however long it grows.

Points arrive in order. Each bucket summarises `size` consecutive points; when the buckets are full, neighbours
merge pairwise and `size` doubles, so memory stays at `capacity` buckets and every point still counts in a
mean. Charts of many runs draw the bucket means: one readable line per run at any length.
"""

from __future__ import annotations

import numpy as np

CAPACITY = 1024


class BucketSeries:
    """An append-only (x, y) series reduced to at most `capacity` buckets plus the one being filled."""

    def __init__(self, capacity: int = CAPACITY):
        self.capacity = capacity
        self.size = 1  # points per full bucket
        self._x = np.empty(0, dtype=np.float64)  # mean x of each closed bucket
        self._y = np.empty(0, dtype=np.float64)  # mean of its finite y values (NaN when it has none)
        self._lo = np.empty(0, dtype=np.float32)
        self._hi = np.empty(0, dtype=np.float32)
        self._n = np.empty(0, dtype=np.float64)  # finite y values in the bucket (a share, for seeded buckets)
        self._m = np.empty(0, dtype=np.float64)  # points in the bucket
        self._pending_x = np.empty(0, dtype=np.float64)  # points of the bucket being filled
        self._pending_y = np.empty(0, dtype=np.float64)
        self.count = 0  # points seen
        self.last_x: float | None = None

    def __len__(self) -> int:
        return len(self._x) + (1 if len(self._pending_x) else 0)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        return sum(a.nbytes for a in (self._x, self._y, self._lo, self._hi, self._n, self._m, self._pending_x,
                                      self._pending_y))

    def extend(self, xs, ys) -> None:
        """Append points (equal-length sequences, x increasing)."""
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        if not len(xs):
            return
        self.count += len(xs)
        self.last_x = float(xs[-1])
        x = np.concatenate([self._pending_x, xs])
        y = np.concatenate([self._pending_y, ys])
        whole = len(x) - len(x) % self.size
        if whole:
            self._close(x[:whole].reshape(-1, self.size), y[:whole].reshape(-1, self.size))
        self._pending_x, self._pending_y = x[whole:].copy(), y[whole:].copy()
        while len(self._x) > self.capacity:
            self._halve()

    def seed(self, x: np.ndarray, y: np.ndarray, sums: np.ndarray, counts: np.ndarray, points: float,
             rows: int) -> None:
        """Start from an already reduced series of `rows` rows: each point holds `sums`/`counts` of its bucket's
        finite values and stands for `points` rows; later points go into buckets of about that many rows."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, sums / counts, np.nan)
        self._x, self._y = np.asarray(x, np.float64), mean.astype(np.float64)
        self._lo = self._hi = np.asarray(y, np.float32)
        self._n, self._m = np.asarray(counts, np.float64), np.full(len(x), float(points))
        self.size = max(1, int(points))
        self.count = rows
        self.last_x = float(x[-1]) if len(x) else None
        while len(self._x) > self.capacity:
            self._halve()

    def _close(self, x: np.ndarray, y: np.ndarray) -> None:
        finite = np.isfinite(y)
        n = finite.sum(1)
        total = np.where(finite, y, 0.0).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / n
        lo = np.where(finite, y, np.inf).min(1)
        hi = np.where(finite, y, -np.inf).max(1)
        self._x = np.concatenate([self._x, x.mean(1)])
        self._y = np.concatenate([self._y, mean])
        self._lo = np.concatenate([self._lo, lo.astype(np.float32)])
        self._hi = np.concatenate([self._hi, hi.astype(np.float32)])
        self._n = np.concatenate([self._n, n])
        self._m = np.concatenate([self._m, np.full(len(x), x.shape[1], dtype=np.float64)])

    def _halve(self) -> None:
        """Merge neighbouring buckets pairwise (an odd last one stays) and double the bucket size."""
        k = len(self._x) // 2 * 2
        n, m = self._n[:k].reshape(-1, 2), self._m[:k].reshape(-1, 2)
        y = np.nan_to_num(self._y[:k]).reshape(-1, 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (y * n).sum(1) / n.sum(1)  # each point weighs the same, however full its bucket was
        x = (self._x[:k].reshape(-1, 2) * m).sum(1) / m.sum(1)
        merged = (x, mean, self._lo[:k].reshape(-1, 2).min(1), self._hi[:k].reshape(-1, 2).max(1), n.sum(1), m.sum(1))
        rest = (self._x[k:], self._y[k:], self._lo[k:], self._hi[k:], self._n[k:], self._m[k:])
        self._x, self._y, self._lo, self._hi, self._n, self._m = (np.concatenate([a, b]) for a, b in zip(merged, rest))
        self.size *= 2

    def means(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, mean y) of every bucket, the one being filled last; buckets without a finite value are left out."""
        x, y = self._x, self._y
        if len(self._pending_x):
            finite = np.isfinite(self._pending_y)
            tail_y = self._pending_y[finite].mean() if finite.any() else np.nan
            x = np.append(x, self._pending_x.mean())
            y = np.append(y, tail_y)
        keep = np.isfinite(y)
        return x[keep], y[keep]

    def value_at(self, x: float) -> float | None:
        """The mean y of the bucket nearest to `x` from below (None when empty)."""
        xs, ys = self.means()
        if not len(xs):
            return None
        i = max(0, int(np.searchsorted(xs, x, side="right")) - 1)
        return float(ys[i])
