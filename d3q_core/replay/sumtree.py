"""A vectorized k-ary priority tree: batched set, batched prefix-sum search, total and min.

Every operation loops over tree levels, never over elements. A wide node (16 children by
default) makes the tree shallow: 2^20 leaves are 5 levels, so a batch search is 5 rounds of
fancy indexing over [batch, k] blocks. Parents are recomputed from their children rather than
patched with deltas, so floating-point error never accumulates, and a parallel min-tree keeps
the exact minimum priority for importance-weight normalization.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    def __init__(self, capacity: int, arity: int = 16):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if arity < 2:
            raise ValueError("arity must be >= 2")
        self.capacity, self.k = int(capacity), int(arity)
        # levels[0] is the root level (one node); levels[-1] the leaves, padded with zeros
        sizes = [self.capacity]
        while sizes[-1] > 1:
            sizes.append(-(-sizes[-1] // self.k))
        depth = len(sizes) - 1
        self.sums = [np.zeros(self.k ** d, np.float64) for d in range(depth + 1)]
        self.mins = [np.full(self.k ** d, np.inf, np.float64) for d in range(depth + 1)]
        self.depth = depth
        self._offsets = np.arange(self.k)

    @property
    def leaves(self) -> np.ndarray:
        """A view of the priorities (no copy)."""
        return self.sums[-1][: self.capacity]

    @property
    def total(self) -> float:
        return float(self.sums[0][0])

    @property
    def min(self) -> float:
        """Smallest positive-or-zero priority set so far among stored leaves (inf if none)."""
        return float(self.mins[0][0])

    def set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Batched set; with duplicate indices the last one wins."""
        idx = np.asarray(indices, np.int64)
        pr = np.asarray(priorities, np.float64)
        if idx.size == 0:
            return
        if idx.min() < 0 or idx.max() >= self.capacity:
            raise IndexError("leaf index out of range")
        if np.any(pr < 0) or not np.all(np.isfinite(pr)):
            raise ValueError("priorities must be finite and >= 0")
        self.sums[-1][idx] = pr
        self.mins[-1][idx] = pr
        k, off = self.k, self._offsets
        for d in range(self.depth, 0, -1):
            idx = idx // k
            children = idx[:, None] * k + off
            self.sums[d - 1][idx] = self.sums[d][children].sum(axis=1)
            self.mins[d - 1][idx] = self.mins[d][children].min(axis=1)

    def find(self, values: np.ndarray) -> np.ndarray:
        """For each value in [0, total), the leaf whose prefix-sum interval contains it.

        Values at or past the total (floating-point drift) land on the last non-empty leaf;
        a leaf of zero priority is never returned while the total is positive."""
        v = np.array(values, np.float64, copy=True)
        idx = np.zeros(v.size, np.int64)
        rows = np.arange(v.size)
        k, off = self.k, self._offsets
        for d in range(1, self.depth + 1):
            children = idx[:, None] * k + off
            child = self.sums[d][children]
            csum = np.cumsum(child, axis=1)
            j = (csum <= v[:, None]).sum(axis=1)
            # drift past the end: take the last child that holds any priority
            past = j >= k
            if past.any():
                nonzero = child[past] > 0
                j[past] = k - 1 - np.argmax(nonzero[:, ::-1], axis=1)
            # a zero-priority child at the boundary: move right to the next positive one
            zero = child[rows, j] <= 0
            if zero.any():
                positive = child[zero] > 0
                after = positive & (off[None, :] >= j[zero, None])
                j[zero] = np.where(after.any(axis=1), np.argmax(after, axis=1),
                                   k - 1 - np.argmax(positive[:, ::-1], axis=1))
            v -= csum[rows, j] - child[rows, j]
            idx = children[rows, j]
        return idx

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.sums[-1][np.asarray(indices, np.int64)]
