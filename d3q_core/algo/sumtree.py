"""A vectorized k-ary priority tree: batched set, batched prefix-sum search, total and min.

Every operation loops over tree levels (and over the k children of a node), never over the
elements of a batch. In NumPy a call costs as much as a few hundred element operations, so the
layout is chosen to need few calls per batch, each over a whole [k, batch] block:

* Wide nodes (16 children) over a searchsorted top. Levels of block sums are stacked on the
  leaves until at most `top_max` nodes are left; those get a global prefix sum (rebuilt lazily,
  once per search after any change) searched by one `searchsorted`. 2^20 leaves are two block
  levels and a top of 4096.
* Only raw sums are stored. A set recomputes each touched parent as the sum of its children
  (one `reduceat`), never by adding deltas: rounding never accumulates, and the tree is a pure
  function of its leaves, so a rebuilt tree (after a load) is bit-identical to an updated one.
* A search gathers the k children of each node, transposes them to [k, batch] so that each
  prefix step is one contiguous vector add across the batch, and counts the prefix sums below
  the value. Sequential prefix sums are monotone and exactly flat across a zero child, the
  intervals are (c_j, c_j+1], and the value is clamped into each node's total: floating-point
  drift can never walk off the end, and a zero-priority leaf is never returned.
* `min` (the smallest positive priority, for importance-weight normalization) is exact: block
  minima above the leaves, and a global minimum over the last level kept incrementally.
"""

from __future__ import annotations

import numpy as np

_TINY = float(np.finfo(np.float64).smallest_subnormal)
_INF_BITS_M1 = np.uint64(np.array(np.inf).view(np.uint64) - 1)
_ONE_U64 = np.uint64(1)
_CHUNK = 16


def _block_sums(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of each row of a C-contiguous [n, k] array.

    One reduceat call, whose per-segment loop depends only on the segment, so a batch update
    and a full rebuild give the same bits."""
    return np.add.reduceat(rows.reshape(-1), starts)


def _block_positive_mins(rows: np.ndarray, starts: np.ndarray,
                         scratch: np.ndarray | None = None) -> np.ndarray:
    """Smallest positive value of each row of a C-contiguous [n, k] array (>= 0), inf if none.

    Non-negative doubles order like their bit patterns; subtracting 1 (wrapping) sends 0.0 to the
    largest integer, so an integer min skips zeros without a mask."""
    u = np.subtract(rows.reshape(-1).view(np.uint64), _ONE_U64, out=scratch)
    m = np.minimum.reduceat(u, starts)
    np.minimum(m, _INF_BITS_M1, out=m)
    m += _ONE_U64
    return m.view(np.float64)


def _block_mins(rows: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Min of each row of a C-contiguous [n, k] array of positive values or inf (bit order)."""
    return np.minimum.reduceat(rows.reshape(-1).view(np.uint64), starts).view(np.float64)


def _last_of_each(idx: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """idx and values with only the last occurrence of each index kept (a stable sort)."""
    order = np.argsort(idx, kind="stable")
    ordered = idx[order]
    last = np.empty(idx.size, np.bool_)
    np.not_equal(ordered[1:], ordered[:-1], out=last[:-1])
    last[-1] = True
    keep = order[last]
    return idx[keep], values[keep]


class SumTree:
    """Priorities of `capacity` leaves; find the leaf under a point of the running total."""

    def __init__(self, capacity: int, arity: int = 16, top_max: int = 4096,
                 min_top_max: int = 65536):
        capacity, arity = int(capacity), int(arity)
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if arity < 2 or arity > 256 or arity & (arity - 1):
            raise ValueError(f"arity must be a power of two in [2, 256], got {arity}")
        self.capacity, self.k = capacity, arity
        self._shift = arity.bit_length() - 1
        k = arity
        # Sum levels: _raw[0] are the leaves, _raw[d + 1][b] the sum of block b of _raw[d];
        # each is padded with zeros to whole blocks. _raw[-1] is the top, searched by cumsum.
        self._n = [capacity]
        while self._n[-1] > max(int(top_max), 1):
            self._n.append(-(-self._n[-1] // k))
        self._raw = [np.zeros(-(-n // k) * k, np.float64) for n in self._n]
        self._blocks = [r.reshape(-1, k) for r in self._raw]
        top = self._raw[-1]
        self._top_cum = np.zeros(top.size + 1, np.float64)  # [0] stays 0: exclusive prefix
        self._top_search = self._top_cum[1 : self._n[-1] + 1]
        # A long top's prefix is built from chunks of _CHUNK: a plain cumsum costs ~3 ns a value
        # (NumPy's accumulate loop), while _CHUNK vector adds across all chunks are ~4x cheaper.
        self._chunked = top.size >= 16 * _CHUNK and top.size % _CHUNK == 0
        if self._chunked:
            nc = top.size // _CHUNK
            self._top_rows = top.reshape(nc, _CHUNK)
            self._top_cols = np.empty((_CHUNK, nc), np.float64)
            self._top_pre = np.empty((_CHUNK, nc), np.float64)
            self._top_ends = np.zeros(nc + 1, np.float64)
            self._top_col_list = list(self._top_cols)
            self._top_pre_list = list(self._top_pre)
        # Min levels: _mins[0][b] is the smallest positive leaf of leaf block b (inf if none),
        # _mins[d + 1][b] the min of block b of _mins[d]; padded with inf. The global min over
        # the last level is kept lazily: exact, and rescanned (at most min_top_max values) only
        # when a set raised an entry that held it.
        sizes = [-(-capacity // k)]
        while sizes[-1] > max(int(min_top_max), 1):
            sizes.append(-(-sizes[-1] // k))
        self._mins = [np.full(-(-n // k) * k, np.inf) for n in sizes]
        self._min_blocks = [m.reshape(-1, k) for m in self._mins]
        self._dirty = False
        self._total = 0.0
        self._min = np.inf
        self._min_stale = False
        self._scratch: dict[int, _Scratch] = {}
        self._set_scratch: dict[int, tuple] = {}
        self._stamp: np.ndarray | None = None  # scratch for _has_repeats, made on first use

    # --- reading ----------------------------------------------------------------------------

    @property
    def nbytes(self) -> int:
        """Bytes the tree's arrays own (views counted once), its lazily made int32 stamps
        counted as if made: what a replay memory reports holding."""
        seen: set[int] = set()
        total = 0
        for value in vars(self).values():
            for a in value if isinstance(value, list | tuple) else [value]:
                if isinstance(a, np.ndarray) and a.base is None and id(a) not in seen:
                    seen.add(id(a))
                    total += a.nbytes
        if self._stamp is None:
            total += 4 * self.capacity
        return total

    @property
    def leaves(self) -> np.ndarray:
        """The priorities in leaf order, a view (no copy): do not write to it."""
        return self._raw[0][: self.capacity]

    @property
    def total(self) -> float:
        self._refresh_top()
        return self._total

    @property
    def min(self) -> float:
        """The smallest positive priority, exact (inf while there is none)."""
        self._refresh_top()
        return self._min

    def total_and_min(self) -> tuple[float, float]:
        """`total` and `min` in one call, for hot loops."""
        self._refresh_top()
        return self._total, self._min

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self._raw[0][self._check_indices(indices)]

    def _refresh_top(self) -> None:
        if self._dirty:
            if self._chunked:
                self._chunked_prefix()
            else:
                np.cumsum(self._raw[-1], out=self._top_cum[1:])
            self._total = float(self._top_cum[-1])
            self._dirty = False
        if self._min_stale:
            self._min = float(self._mins[-1].min())
            self._min_stale = False

    def _chunked_prefix(self) -> None:
        """Inclusive prefix of the top into _top_cum[1:]: sequential inside each chunk, then each
        chunk offset by the (sequential) sum of the ones before it. Like a plain cumsum it is
        monotone and exactly flat across a zero, so no search can land on an empty node."""
        cols, pre, add = self._top_col_list, self._top_pre_list, np.add
        np.copyto(self._top_cols, self._top_rows.T)
        np.copyto(pre[0], cols[0])
        for i in range(1, _CHUNK):
            add(pre[i - 1], cols[i], pre[i])
        ends = self._top_ends
        np.cumsum(pre[-1], out=ends[1:])  # ends[c] = sum of the chunks before c
        self._top_pre += ends[:-1]
        np.copyto(self._top_cum[1:].reshape(-1, _CHUNK), self._top_pre.T)

    # --- writing ----------------------------------------------------------------------------

    def _check_indices(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices)
        if idx.size == 0:
            return np.empty(0, np.intp)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got {idx.dtype}")
        idx = idx.astype(np.intp, copy=False).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            raise IndexError(f"leaf index out of range [0, {self.capacity})")
        return idx

    @staticmethod
    def _check_priorities(priorities: np.ndarray, n: int) -> np.ndarray:
        pr = np.asarray(priorities, np.float64)
        pr = np.broadcast_to(pr, (n,)) if pr.ndim == 0 else pr.reshape(-1)
        if pr.size != n:
            raise ValueError(f"{pr.size} priorities for {n} indices")
        if n and not (np.isfinite(pr).all() and pr.min() >= 0.0):
            raise ValueError("priorities must be finite and >= 0")
        return pr + 0.0  # a copy, with -0.0 made +0.0

    def set(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Batched set. With repeated indices the last one wins."""
        idx = self._check_indices(indices)
        self.set_unchecked(idx, self._check_priorities(priorities, idx.size))

    def set_unchecked(self, idx: np.ndarray, pr: np.ndarray) -> None:
        """`set` for callers that guarantee idx: intp in range, pr: finite float64 >= 0."""
        n = idx.size
        if n == 0:
            return
        rows, starts, bits, positions = self._set_buffers(n)
        shift = self._shift
        if n > 1 and self._has_repeats(idx, positions):
            idx, pr = _last_of_each(idx, pr)
            n = idx.size  # fewer: the leading part of each scratch array will do
            rows, starts, bits = rows[:n], starts[:n], bits[: n * self.k]
        self._raw[0][idx] = pr
        b = idx >> shift
        np.take(self._blocks[0], b, axis=0, out=rows, mode="clip")
        new = _block_positive_mins(rows, starts, bits)
        if len(self._mins) == 1:
            self._track_min(self._mins[0].take(b), new)
        self._mins[0][b] = new
        for d in range(len(self._raw) - 1):
            if d:
                b >>= shift
                np.take(self._blocks[d], b, axis=0, out=rows, mode="clip")
            self._raw[d + 1][b] = _block_sums(rows, starts)
        b = idx >> shift
        for d in range(1, len(self._mins)):
            b >>= shift
            np.take(self._min_blocks[d - 1], b, axis=0, out=rows, mode="clip")
            new = _block_mins(rows, starts)
            if d == len(self._mins) - 1:
                self._track_min(self._mins[d].take(b), new)
            self._mins[d][b] = new
        self._dirty = True

    def _has_repeats(self, idx: np.ndarray, positions: np.ndarray) -> bool:
        """Whether idx repeats a leaf. Stamp each leaf with its position and read back: a
        repeated leaf keeps only one of its positions, whichever NumPy happened to write last,
        so the answer does not depend on NumPy's (unspecified) write order."""
        if self._stamp is None:
            self._stamp = np.zeros(self.capacity, np.int32)
        stamp = self._stamp
        stamp[idx] = positions
        return not (stamp.take(idx) == positions).all()

    def _track_min(self, old: np.ndarray, new: np.ndarray) -> None:
        """Keep the global min exact as top-level min entries change from old to new."""
        if self._min_stale:
            return
        m = self._min
        if old.min() <= m and np.any((old == m) & (new > m)):  # its holder went up: rescan
            self._min_stale = True
        else:
            low = float(new.min())
            if low < m:
                self._min = low

    def set_range(self, start: int, priorities: np.ndarray) -> None:
        """Set leaves start, start+1, ... (no wrap): slices instead of fancy indexing."""
        pr = self._check_priorities(priorities, np.size(priorities))
        start, stop = int(start), int(start) + pr.size
        if start < 0 or stop > self.capacity:
            raise IndexError(f"range [{start}, {stop}) outside [0, {self.capacity})")
        if pr.size == 0:
            return
        self._raw[0][start:stop] = pr
        self._refresh_range(start, stop)

    def _refresh_range(self, start: int, stop: int) -> None:
        """Recompute every node above leaves [start, stop)."""
        s, k = self._shift, self.k
        lo, hi = start >> s, ((stop - 1) >> s) + 1
        starts = np.arange(0, (hi - lo) * k, k)
        new = _block_positive_mins(self._blocks[0][lo:hi], starts)
        if len(self._mins) == 1:
            self._track_min(self._mins[0][lo:hi], new)
        self._mins[0][lo:hi] = new
        for d in range(len(self._raw) - 1):
            starts = np.arange(0, (hi - lo) * k, k)
            self._raw[d + 1][lo:hi] = _block_sums(self._blocks[d][lo:hi], starts)
            lo, hi = lo >> s, ((hi - 1) >> s) + 1
        lo, hi = start >> s, ((stop - 1) >> s) + 1
        for d in range(1, len(self._mins)):
            lo, hi = lo >> s, ((hi - 1) >> s) + 1
            starts = np.arange(0, (hi - lo) * k, k)
            new = _block_mins(self._min_blocks[d - 1][lo:hi], starts)
            if d == len(self._mins) - 1:
                self._track_min(self._mins[d][lo:hi], new)
            self._mins[d][lo:hi] = new
        self._dirty = True

    def rebuild(self) -> None:
        """Recompute all inner nodes from the leaves (as after a load)."""
        self._refresh_range(0, self.capacity)

    # --- searching --------------------------------------------------------------------------

    def _buffers(self, n: int) -> _Scratch:
        """Search scratch for batch size n (sample sizes repeat, so a few are kept)."""
        buf = self._scratch.get(n)
        if buf is None:
            if len(self._scratch) > 8:
                self._scratch.clear()
            buf = self._scratch[n] = _Scratch(n, self.k)
        return buf

    def _set_buffers(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Set scratch for n indices: leading parts of arrays sized to the next power of two,
        since update sizes vary (stale indices dropped) and allocating is slow."""
        size = 1 << (n - 1).bit_length()
        buf = self._set_scratch.get(size)
        if buf is None:
            k = self.k
            buf = self._set_scratch[size] = (np.empty((size, k), np.float64),
                                             np.arange(0, size * k, k, dtype=np.intp),
                                             np.empty(size * k, np.uint64),
                                             np.arange(size, dtype=np.int32))
        rows, starts, bits, positions = buf
        return rows[:n], starts[:n], bits[: n * self.k], positions[:n]

    def find(self, values: np.ndarray) -> np.ndarray:
        """For each value in [0, total], the leaf whose prefix-sum interval contains it.

        Values outside [0, total] (or NaN) are clamped into it; a zero-priority leaf is never
        returned. Raises ValueError when the total is not positive."""
        self._refresh_top()
        total = self._total
        if not total > 0.0:
            raise ValueError("cannot search a tree whose total priority is 0")
        v = np.array(values, np.float64).reshape(-1)
        if v.size == 0:
            return np.empty(0, np.int64)
        # intervals are (c_j, c_j+1]: a zero child's is empty, and v > 0 stays > 0 below
        np.fmax(v, _TINY, out=v)
        np.fmin(v, total, out=v)
        return self.find_clamped(v)

    def find_clamped(self, v: np.ndarray) -> np.ndarray:
        """`find` for callers whose values are already in [tiny, total] (float64, contiguous,
        non-empty); v is used as scratch."""
        n = v.size
        b = np.searchsorted(self._top_search, v, side="left")
        v -= self._top_cum[b]
        if len(self._raw) == 1:
            return b.astype(np.int64, copy=False)
        buf = self._buffers(n)
        k, shift, add = self.k, self._shift, np.add
        rows, cols, col_list, prefix, pre_list = (buf.rows, buf.cols, buf.col_list, buf.prefix,
                                                  buf.prefix_list)
        below, j, flat, arange, excl = buf.below, buf.j, buf.flat, buf.arange, buf.excl
        pre_flat, below_u8, width = prefix.reshape(-1), below.view(np.uint8), np.intp(n)
        total_row, inner = pre_list[k], prefix[1:k]
        for d in range(len(self._raw) - 2, -1, -1):
            np.take(self._blocks[d], b, axis=0, out=rows, mode="clip")  # children of each node
            np.copyto(cols, rows.T)  # [k, n]: each child step below is one contiguous vector op
            # prefix sums, sequential: monotone, and exactly flat across a zero child
            for i in range(k):
                add(pre_list[i], col_list[i], pre_list[i + 1])
            np.fmin(v, total_row, out=v)  # drift: stay inside this node's total
            np.less(inner, v, out=below)  # j = #{c_i < v, 0 < i < k}
            np.add.reduce(below_u8, axis=0, dtype=np.uint8, out=j)
            np.multiply(j, width, out=flat)
            flat += arange
            np.take(pre_flat, flat, out=excl, mode="clip")
            v -= excl
            b <<= shift
            b += j
        return b.astype(np.int64, copy=False)


class _Scratch:
    """Preallocated work arrays for one batch size, with row views made once."""

    def __init__(self, n: int, k: int):
        self.rows = np.empty((n, k), np.float64)
        self.cols = np.empty((k, n), np.float64)
        self.col_list = list(self.cols)
        self.prefix = np.zeros((k + 1, n), np.float64)  # row 0 stays 0: c_0
        self.prefix_list = list(self.prefix)
        self.below = np.empty((k - 1, n), np.bool_)
        self.j = np.empty(n, np.uint8)
        self.flat = np.empty(n, np.intp)
        self.arange = np.arange(n, dtype=np.intp)
        self.excl = np.empty(n, np.float64)
