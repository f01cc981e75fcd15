"""Prioritized replay memory: a ring buffer of structured records beside a sum tree.

Priorities are `(|td| + eps) ** alpha`. Every record gets a virtual index, a global insertion
count (slot = vidx % capacity); each slot remembers the virtual index of the record in it, so a
priority update that arrives after its record was overwritten is recognised and dropped instead of
landing on the newer record.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from d3q_core.algo.sumtree import SumTree
from d3q_core.storage.atomic import atomic_path

SNAPSHOT_VERSION = 1
_STATS_CHUNK = 1 << 15
_TINY = float(np.finfo(np.float64).smallest_subnormal)


class SampleBatch(NamedTuple):
    """A NamedTuple, not a dataclass: built once per sample, where microseconds count."""

    records: np.ndarray  # structured, one per sample (copies)
    indices: np.ndarray  # virtual indices, int64: hand them back to update_priorities
    weights: np.ndarray  # importance-sampling weights, float32, at most 1


@dataclass(frozen=True)
class MemoryStats:
    size: int
    capacity: int
    total: float
    max_priority: float  # of the stored records (ReplayMemory.max_priority is the running max)
    mean_priority: float
    histogram: tuple[int, ...]  # counts of stored priorities per bin
    bin_edges: tuple[float, ...]  # log-spaced, len(histogram) + 1


def _dtype_to_json(dtype: np.dtype) -> str:
    return json.dumps(_descr_to_plain(dtype.descr))


def _descr_to_plain(descr: list) -> list:
    out = []
    for field in descr:
        name, kind = field[0], field[1]
        item: list[Any] = [name, _descr_to_plain(kind) if isinstance(kind, list) else kind]
        if len(field) > 2:
            item.append(list(field[2]))
        out.append(item)
    return out


def _dtype_from_json(text: str) -> np.dtype:
    def build(descr: list) -> list:
        fields = []
        for item in descr:
            name, kind = str(item[0]), item[1]
            kind = build(kind) if isinstance(kind, list) else str(kind)
            fields.append((name, kind, tuple(item[2])) if len(item) > 2 else (name, kind))
        return fields

    return np.dtype(build(json.loads(text)))


_SNAPSHOT_ERRORS = (KeyError, TypeError, ValueError, IndexError, OSError, EOFError,
                    zipfile.BadZipFile, json.JSONDecodeError)  # what a corrupt .npz raises


def annealed_beta(beta0: float, anneal_samples: int, sampled: int) -> float:
    """The importance-sampling exponent, annealed linearly from beta0 to 1 over the first
    `anneal_samples` learner samples (the PER paper's schedule)."""
    return beta0 + (1.0 - beta0) * min(1.0, sampled / anneal_samples)


class PrioritizedSlots:
    """The priority half of a prioritized memory, shared by ReplayMemory and FrameMemory: a sum
    tree over slots, priorities from TD errors with their running max, stratified draws with
    importance weights, statistics. A subclass owns what the slots hold and which are live; a
    slot that holds nothing has priority 0, which the tree never draws."""

    def __init__(self, slots: int, alpha: float, eps: float, seed: int | None):
        if not (np.isfinite(alpha) and alpha >= 0.0):
            raise ValueError(f"alpha must be finite and >= 0, got {alpha}")
        if not (np.isfinite(eps) and eps > 0.0):  # > 0: no stored record may have priority 0
            raise ValueError(f"eps must be finite and > 0, got {eps}")
        self.alpha, self.eps = float(alpha), float(eps)
        self._tree = SumTree(slots)
        self._max_priority = 1.0
        self._rng = np.random.default_rng(seed)
        self._strata: dict[int, np.ndarray] = {}

    @staticmethod
    def read_meta(path: str | Path) -> dict:
        """A snapshot's header (capacity, alpha, eps, ...) without reading its arrays."""
        with np.load(Path(path), allow_pickle=False) as data:
            return json.loads(str(data["meta"][()]))

    @property
    def max_priority(self) -> float:
        return self._max_priority

    def _priority(self, td_errors: np.ndarray) -> tuple[np.ndarray, float]:
        """Priorities for TD errors and their max; NaN or inf is refused here, since once in
        the tree it would poison every total."""
        p = np.abs(np.asarray(td_errors, np.float64))
        p += self.eps
        if self.alpha != 1.0:
            np.power(p, self.alpha, out=p)
        top = float(p.max()) if p.size else 0.0
        if not top < np.inf:  # False for NaN as well
            raise ValueError("td_errors must be finite")
        return p, top

    def _draw(self, n: int, beta: float, p_min: float | None) -> tuple[np.ndarray, np.ndarray]:
        """n slots, one drawn uniformly from each of n equal slices of the total priority, and
        their importance weights (float32).

        Weights are (N P(i))^-beta over the largest possible one, that of the smallest
        priority, so they are at most 1. A shard of a larger memory passes that memory's
        smallest priority as `p_min`: with shards drawn in proportion to their totals,
        P(i) = p_i / total of all, and the weights are the whole memory's, since N and the
        total cancel: (p_min / p_i)^beta."""
        n = int(n)
        if n < 1:
            raise ValueError(f"sample size must be >= 1, got {n}")
        if not beta >= 0.0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        tree = self._tree
        total, own_min = tree.total_and_min()
        p_min = own_min if p_min is None else min(own_min, float(p_min))
        if not total > 0.0:  # only if (|td| + eps) ** alpha underflowed everywhere
            raise ValueError("cannot sample: every stored priority is 0")
        strata = self._strata.get(n)
        if strata is None:
            strata = self._strata[n] = np.arange(n, dtype=np.float64)
        v = self._rng.random(n)
        v += strata
        v *= total / n  # increasing: only the ends can round outside [tiny, total]
        if v[0] < _TINY:
            v[0] = _TINY
        if v[-1] > total:
            v[-1] = total
        slots = tree.find_clamped(v)
        p = tree.leaves.take(slots)  # P(i) = p / total, and the total cancels below
        np.divide(p_min, p, out=p)  # (N P(i))^-beta / (N P_min)^-beta = (p_min / p)^beta
        if beta != 1.0:
            np.power(p, beta, out=p)
        return slots, p.astype(np.float32)

    def total_and_min(self) -> tuple[float, float]:
        """The sum of the stored priorities and the smallest (a shard reports them)."""
        return self._tree.total_and_min()

    def _stats(self, size: int, capacity: int, leaves: np.ndarray, bins: int,
               has_zeros: bool = False) -> MemoryStats:
        """Size, totals and a log-spaced histogram of the positive priorities among `leaves`
        (a view of the tree's; `has_zeros`: some are empty slots, to skip)."""
        bins = int(bins)
        if bins < 1:
            raise ValueError(f"bins must be >= 1, got {bins}")
        if size == 0:
            return MemoryStats(0, capacity, 0.0, 0.0, 0.0, (0,) * bins, (0.0,) * (bins + 1))
        total = self._tree.total
        lo, top = self._tree.min, float(leaves.max())
        hi = top if top > lo else lo * (1.0 + 1e-6)  # all equal: still a range to bin over
        log_lo, log_hi = float(np.log(lo)), float(np.log(hi))
        scale = bins / (log_hi - log_lo)
        counts = np.zeros(bins, np.int64)
        chunk = np.empty(min(leaves.size, _STATS_CHUNK), np.float64)
        for start in range(0, leaves.size, _STATS_CHUNK):  # chunks: a small, bounded scratch
            part = leaves[start : start + _STATS_CHUNK]
            if has_zeros:
                part = part[part > 0.0]
            t = np.log(part, out=chunk[: part.size])
            t -= log_lo
            t *= scale  # >= 0: every leaf is >= lo
            which = t.astype(np.intp)
            np.minimum(which, bins - 1, out=which)
            counts += np.bincount(which, minlength=bins)
        edges = np.exp(np.linspace(log_lo, log_hi, bins + 1))
        edges[0], edges[-1] = lo, hi
        return MemoryStats(size, capacity, total, top, total / size,
                           tuple(int(c) for c in counts), tuple(float(e) for e in edges))


class ReplayMemory(PrioritizedSlots):
    """Proportional prioritized replay (Schaul et al.) with stratified sampling."""

    def __init__(self, capacity: int, dtype: np.dtype, alpha: float = 0.6, eps: float = 1e-3,
                 seed: int | None = None):
        capacity = int(capacity)
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        super().__init__(capacity, alpha, eps, seed)
        self._capacity = capacity
        self._dtype = np.dtype(dtype)
        self._records = np.zeros(capacity, self._dtype)
        self._vidx = np.full(capacity, -1, np.int64)  # virtual index of the record in each slot
        self._next = 0  # virtual index the next record gets
        # a power-of-two capacity maps virtual index to slot with one AND instead of a modulo
        self._slot_mask = capacity - 1 if capacity & (capacity - 1) == 0 else 0

    @staticmethod
    def bytes_needed(capacity: int, dtype: np.dtype) -> int:
        """An upper bound on what a memory of `capacity` records takes: the records, a
        virtual index each, the sum tree's levels of sums and minima (float64) and its int32
        stamps. At 2^20 CartPole records: 76 MiB estimated, 64 MiB of RSS growth measured
        (filled, then sampled), so the refusal it backs errs on the safe side."""
        return int(capacity) * (np.dtype(dtype).itemsize + 8 + 2 * 8 + 4 + 4)

    @property
    def nbytes(self) -> int:
        """Bytes the memory holds: records, virtual indices, the sum tree."""
        return self._records.nbytes + self._vidx.nbytes + self._tree.nbytes

    # --- basics -----------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def inserted(self) -> int:
        """Records ever added (the next virtual index)."""
        return self._next

    def __len__(self) -> int:
        return min(self._next, self._capacity)

    def priorities(self) -> np.ndarray:
        """The stored priorities in slot order, a read-only view (no copy)."""
        view = self._tree.leaves[: len(self)]
        view.flags.writeable = False
        return view

    # --- writing ----------------------------------------------------------------------------

    def add(self, records: np.ndarray, td_errors: np.ndarray | None = None) -> np.ndarray:
        """Store records, overwriting the oldest; returns their virtual indices (int64).

        Without TD errors a record gets the running max priority, so it is sampled soon."""
        records = np.asarray(records)
        if records.dtype != self._dtype:
            raise TypeError(f"records have dtype {records.dtype}, memory holds {self._dtype}")
        records = records.reshape(-1)
        n = records.size
        if td_errors is None:
            prios = np.full(n, self._max_priority)
        else:
            prios, top = self._priority(td_errors)
            if prios.shape != (n,):
                raise ValueError(f"{prios.size} td_errors for {n} records")
            self._max_priority = max(self._max_priority, top)
        vidx = np.arange(self._next, self._next + n, dtype=np.int64)
        self._next += n
        cap = self._capacity
        keep = min(n, cap)  # of a batch larger than the memory only the newest survive
        if keep == 0:
            return vidx
        start = int(vidx[n - keep]) % cap
        first = min(keep, cap - start)  # up to the end of the buffer, then wrap to slot 0
        for dst, lo, hi in ((start, n - keep, n - keep + first), (0, n - keep + first, n)):
            if hi > lo:
                self._records[dst : dst + hi - lo] = records[lo:hi]
                self._vidx[dst : dst + hi - lo] = vidx[lo:hi]
                self._tree.set_range(dst, prios[lo:hi])
        return vidx

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities for sampled records, by virtual index.

        Indices whose record has been overwritten since are ignored; with repeated indices the
        last one wins. Every priority set counts toward the running max."""
        vidx = np.asarray(indices, np.int64).reshape(-1)
        td = np.asarray(td_errors, np.float64).reshape(-1)
        if vidx.shape != td.shape:
            raise ValueError(f"{td.size} td_errors for {vidx.size} indices")
        mask = self._slot_mask
        slots = vidx & mask if mask else vidx % self._capacity
        live = self._vidx[slots] == vidx
        if not live.all():
            slots, td = slots[live], td[live]
            if slots.size == 0:
                return
        prios, top = self._priority(td)
        if top > self._max_priority:
            self._max_priority = top
        self._tree.set_unchecked(slots, prios)

    # --- sampling ---------------------------------------------------------------------------

    def sample(self, n: int, beta: float, p_min: float | None = None) -> SampleBatch:
        """n records, one drawn uniformly from each of n equal slices of the total priority,
        with weights (p_min / p_i)^beta: see `PrioritizedSlots._draw`."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay memory")
        slots, weights = self._draw(n, beta, p_min)
        return SampleBatch(self._records.take(slots), self._vidx.take(slots), weights)

    # --- statistics -------------------------------------------------------------------------

    def stats(self, bins: int = 24) -> MemoryStats:
        """Size, totals and a log-spaced histogram of the stored priorities.

        Reads the tree's leaves in place; the records buffer is never touched."""
        size = len(self)
        return self._stats(size, self._capacity, self._tree.leaves[:size], bins)

    # --- persistence (no pickle) ------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """One .npz of plain arrays plus a JSON header, written atomically: a reader, or a
        crash, sees the old file or the new one, never half of one."""
        size = len(self)
        meta = {
            "version": SNAPSHOT_VERSION,
            "capacity": self._capacity,
            "alpha": self.alpha,
            "eps": self.eps,
            "next": self._next,
            "max_priority": self._max_priority,
            "dtype": _dtype_to_json(self._dtype),
            "rng": self._rng.bit_generator.state,
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, records=self._records[:size], vidx=self._vidx[:size],
                     priorities=self._tree.leaves[:size], meta=np.array(json.dumps(meta)))
            f.flush()
            os.fsync(f.fileno())

    @classmethod
    def load(cls, path: str | Path, seed: int | None = None) -> ReplayMemory:
        """The memory saved at path. Its random generator continues where it was saved, unless
        a seed is given. Raises FileNotFoundError, or ValueError naming the file if corrupt."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"replay snapshot not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"][()]))
                records, vidx = data["records"], data["vidx"]
                priorities = data["priorities"]
            if meta.get("version") != SNAPSHOT_VERSION:
                raise ValueError(f"unknown snapshot version {meta.get('version')!r}")
            dtype = _dtype_from_json(meta["dtype"])
            mem = cls(int(meta["capacity"]), dtype, float(meta["alpha"]), float(meta["eps"]),
                      seed)
            nxt, size = int(meta["next"]), records.shape[0] if records.ndim == 1 else -1
            if records.dtype != dtype or size != min(nxt, mem.capacity):
                raise ValueError("records do not match the header")
            if vidx.shape != (size,) or priorities.shape != (size,) or vidx.dtype.kind != "i":
                raise ValueError("array lengths differ")
            if size and not (np.array_equal(vidx % mem.capacity, np.arange(size))
                             and vidx.min() >= nxt - mem.capacity and vidx.max() < nxt):
                raise ValueError("virtual indices do not match their slots")
            priorities = priorities.astype(np.float64, copy=False)
            if size and not (np.isfinite(priorities).all() and priorities.min() > 0.0):
                raise ValueError("priorities must be finite and > 0")
            mem._records[:size] = records
            mem._vidx[:size] = vidx
            mem._tree.set_range(0, priorities)
            mem._next = nxt
            mem._max_priority = float(meta["max_priority"])
            if seed is None:
                mem._rng.bit_generator.state = meta["rng"]
        except FileNotFoundError:
            raise
        except _SNAPSHOT_ERRORS as exc:
            raise ValueError(f"corrupt replay snapshot {path}: {exc}") from None
        return mem
