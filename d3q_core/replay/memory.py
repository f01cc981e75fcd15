"""Prioritized replay memory: a ring buffer of structured records beside a sum tree.

Priorities are `(|td| + eps) ** alpha`. Each slot remembers the virtual index (a global
insertion count) of the record in it, so a priority update for a record that has since been
overwritten is recognised and ignored.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from d3q_core.atomic import atomic_path
from d3q_core.replay.sumtree import SumTree


@dataclass(frozen=True)
class SampleBatch:
    records: np.ndarray
    indices: np.ndarray  # virtual indices (int64)
    weights: np.ndarray  # importance-sampling weights, float32, max 1


@dataclass(frozen=True)
class MemoryStats:
    size: int
    capacity: int
    total: float
    max_priority: float
    mean_priority: float
    histogram: tuple[int, ...]
    bin_edges: tuple[float, ...]


class ReplayMemory:
    def __init__(self, capacity: int, dtype: np.dtype, alpha: float = 0.6, eps: float = 1e-3,
                 seed: int | None = None):
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity, self.dtype = int(capacity), np.dtype(dtype)
        self.alpha, self.eps = float(alpha), float(eps)
        self.records = np.zeros(self.capacity, self.dtype)
        self.vidx = np.full(self.capacity, -1, np.int64)  # virtual index stored in each slot
        self.tree = SumTree(self.capacity)
        self.next_vidx = 0
        self.max_priority = 1.0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return min(self.next_vidx, self.capacity)

    def _priority(self, td_errors: np.ndarray) -> np.ndarray:
        return (np.abs(np.asarray(td_errors, np.float64)) + self.eps) ** self.alpha

    def add(self, records: np.ndarray, td_errors: np.ndarray | None = None) -> np.ndarray:
        """Store records (wrapping around); returns their virtual indices."""
        n = len(records)
        if n == 0:
            return np.empty(0, np.int64)
        if td_errors is None:
            prios = np.full(n, self.max_priority)
        else:
            prios = self._priority(td_errors)
            self.max_priority = max(self.max_priority, float(prios.max()))
        vidx = np.arange(self.next_vidx, self.next_vidx + n, dtype=np.int64)
        self.next_vidx += n
        if n > self.capacity:  # only the newest `capacity` survive
            records, prios, vidx = records[-self.capacity :], prios[-self.capacity :], \
                vidx[-self.capacity :]
        slots = vidx % self.capacity
        self.records[slots] = records
        self.vidx[slots] = vidx
        self.tree.set(slots, prios)
        return vidx

    def sample(self, n: int, beta: float) -> SampleBatch:
        """Stratified: one uniform draw in each of n equal slices of the total priority."""
        size = len(self)
        if size == 0:
            raise ValueError("cannot sample from an empty replay memory")
        total = self.tree.total
        bounds = (np.arange(n) + self.rng.random(n)) * (total / n)
        slots = self.tree.find(bounds)
        p = self.tree.get(slots) / total
        p_min = self.tree.min / total
        weights = (p / p_min) ** (-beta)  # == (N P(i))^-beta / (N P_min)^-beta
        return SampleBatch(self.records[slots], self.vidx[slots], weights.astype(np.float32))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Ignore indices whose slot was overwritten since sampling; duplicates: last wins."""
        vidx = np.asarray(indices, np.int64)
        slots = vidx % self.capacity
        live = self.vidx[slots] == vidx
        if not live.all():
            slots, td_errors = slots[live], np.asarray(td_errors)[live]
        if slots.size == 0:
            return
        prios = self._priority(td_errors)
        self.max_priority = max(self.max_priority, float(prios.max()))
        self.tree.set(slots, prios)

    def stats(self, bins: int = 24) -> MemoryStats:
        size = len(self)
        leaves = self.tree.leaves[:size]  # a view: no copy of the buffer
        if size == 0:
            return MemoryStats(0, self.capacity, 0.0, 0.0, 0.0, (0,) * bins, (0.0,) * (bins + 1))
        lo = max(float(self.tree.min), 1e-12)
        hi = max(float(leaves.max()), lo * 1.0001)
        edges = np.geomspace(lo, hi, bins + 1)
        counts, _ = np.histogram(leaves, bins=edges)
        total = self.tree.total
        return MemoryStats(size, self.capacity, total, float(hi), total / size,
                           tuple(int(c) for c in counts), tuple(float(e) for e in edges))

    # --- persistence (no pickle) -------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        size = len(self)
        meta = {"capacity": self.capacity, "alpha": self.alpha, "eps": self.eps,
                "next_vidx": self.next_vidx, "max_priority": self.max_priority,
                "dtype": self.dtype.descr}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, records=self.records[:size] if size < self.capacity else self.records,
                     vidx=self.vidx[:size], priorities=self.tree.leaves[:size].copy(),
                     meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: str | Path, seed: int | None = None) -> ReplayMemory:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: replay snapshot not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                descr = [tuple(d) if not isinstance(d[1], list) else (d[0], d[1])
                         for d in meta["dtype"]]
                dtype = np.dtype([(n, t, tuple(s)) if len(rest := d[2:]) and (s := rest[0])
                                  else (n, t) for d in descr for n, t in [d[:2]]])
                mem = cls(meta["capacity"], dtype, meta["alpha"], meta["eps"], seed)
                size = len(data["vidx"])
                mem.records[:size] = data["records"][:size]
                mem.vidx[:size] = data["vidx"]
                if size:
                    mem.tree.set(np.arange(size), data["priorities"])
                mem.next_vidx = int(meta["next_vidx"])
                mem.max_priority = float(meta["max_priority"])
        except (KeyError, ValueError, OSError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: corrupt replay snapshot ({exc.__class__.__name__})") \
                from None
        return mem
