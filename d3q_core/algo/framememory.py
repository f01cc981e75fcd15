"""Prioritized replay for image observations: every frame stored once, stacks rebuilt when sampled.

An Atari observation is a stack of 4 frames and consecutive ones share 3; a transition's
next_obs is the obs n steps later. Storing obs and next_obs whole keeps each frame ~8 times, so
this memory keeps one ring of frames per env stream instead, with each frame's position in its
episode, and rebuilds both stacks of a sampled transition from the ring.

Model of the data: stream s is a sequence of frames at absolute positions 0, 1, 2, ...; the
ring keeps the newest R = ceil(capacity / streams). The stack whose newest frame is at p is the
frames p - min(j, episode_pos[p]) for j = stack-1 .. 0, oldest first: at an episode's start the
first frame repeats (gymnasium's FrameStackObservation(padding_type="reset"), ale-py's vector
env). A transition (stream, obs_pos, next_pos, ...) lives in the slot of its obs frame, with
next_pos - obs_pos beside it; it is live while every frame of both its stacks is in the ring,
and dies (priority 0, its virtual index dead) when add_frames overwrites one.

Slot of (s, p) = s * R + p % R; virtual index = p * streams + s, so a late priority update for
a dead transition is recognised, as in ReplayMemory. The priority half (tree, priorities, draws,
weights, stats) is ReplayMemory's own (memory.PrioritizedSlots); empty slots have priority 0,
which the tree never draws and leaves out of its minimum.

Measured (python -m bench.framememory_bench: one core of a 2-core AMD EPYC VM, another
benchmark busy on the other core), Atari layout, 32 streams, a full memory of 200,000:
  7,094 bytes per transition, tree and per-slot arrays included (bytes_needed at 1,000,000:
  7,105 a transition, 6.62 GiB);
  sample(256) + update_priorities(256): 150,000-190,000 transitions/s, the stacks rebuilt by
  the numba kernel below, which writes each frame straight into its place in the records
  (150,000-280,000/s for the rebuild alone); NumPy fancy indexing into a buffer, then into
  the record fields, rebuilt only 29,000-38,000/s: two copies of 14 MB a batch, not one;
  add_frames + add, 32 streams x 4 steps a call (a simulator message): 270,000-340,000
  transitions/s (MinAtar (10, 10, 4) frames: 520,000-600,000/s, sample+update 580,000+/s).
numba is imported on the first sample only, so importing this module (for bytes_needed, say)
stays light.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from d3q_core.algo.memory import _SNAPSHOT_ERRORS, MemoryStats, PrioritizedSlots, SampleBatch
from d3q_core.algo.transitions import transition_dtype
from d3q_core.storage.atomic import atomic_path

SNAPSHOT_KIND = "frames"
SNAPSHOT_VERSION = 1
EPISODE_POS_MAX = 255  # stored as uint8; a stack looks back at most stack - 1 frames


@dataclass(frozen=True)
class FrameLayout:
    """What one frame is and how many make an observation."""

    frame_shape: tuple[int, ...]  # (84, 84) for Atari, (10, 10, C) for MinAtar
    stack: int  # 4 for Atari, 1 for MinAtar (the observation is the frame)

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.frame_shape)
        if not shape or min(shape) < 1:
            raise ValueError(f"frame_shape must be non-empty and positive, got {shape}")
        stack = int(self.stack)
        if not 1 <= stack <= EPISODE_POS_MAX:
            raise ValueError(f"stack must be in [1, {EPISODE_POS_MAX}], got {stack}")
        object.__setattr__(self, "frame_shape", shape)
        object.__setattr__(self, "stack", stack)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        return (self.stack, *self.frame_shape) if self.stack > 1 else self.frame_shape

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self.frame_shape))

    def to_dict(self) -> dict[str, Any]:
        return {"frame_shape": list(self.frame_shape), "stack": self.stack}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameLayout:
        return cls(tuple(d["frame_shape"]), int(d["stack"]))


def _rebuild(frames: np.ndarray, epos: np.ndarray, ks: np.ndarray, slots: np.ndarray,
             ring: int, stack: int, out: np.ndarray, obs_off: int, next_off: int) -> None:
    """Both stacks of each sampled transition, straight into its record's bytes (out: the
    records viewed as (n, itemsize) uint8). Compiled by numba (see _kernel)."""
    fb = frames.shape[1]
    for i in range(slots.size):
        slot = slots[i]
        r = slot % ring
        base = slot - r
        row = out[i]
        for which in range(2):
            if which == 0:
                rr, off = r, obs_off
            else:
                rr, off = (r + ks[slot]) % ring, next_off
            e = epos[base + rr]
            for j in range(stack):
                back = stack - 1 - j
                if back > e:
                    back = e
                src = frames[base + (rr - back + ring) % ring]
                dst = row[off + j * fb : off + (j + 1) * fb]  # a slice: no sign check per byte
                for b in range(fb):
                    dst[b] = src[b]


_KERNEL: Callable[..., None] | None = None


def _kernel() -> Callable[..., None]:
    """_rebuild compiled on first use: numba loads in the process that samples, not in one
    that only imports this module. Plain loops over bytes: numba's slice assignment was ~8x
    slower here, and NumPy's take-then-assign copies every frame twice."""
    global _KERNEL
    if _KERNEL is None:
        import numba

        _KERNEL = numba.njit(cache=True, nogil=True)(_rebuild)
    return _KERNEL


class FrameMemory(PrioritizedSlots):
    """Proportional prioritized replay over per-stream rings of frames."""

    def __init__(self, capacity: int, layout: FrameLayout, streams: int, alpha: float = 0.6,
                 eps: float = 1e-3, seed: int | None = None):
        capacity, streams = int(capacity), int(streams)
        if streams < 1:
            raise ValueError(f"streams must be >= 1, got {streams}")
        if capacity < streams * layout.stack:
            raise ValueError(f"capacity {capacity} is below streams x stack = "
                             f"{streams} x {layout.stack}: a ring could not hold one stack")
        ring = -(-capacity // streams)
        super().__init__(streams * ring, alpha, eps, seed)
        self._capacity, self._layout, self._streams, self._ring = capacity, layout, streams, ring
        self._dtype = transition_dtype(layout.obs_shape, np.uint8)
        self._obs_off = self._dtype.fields["obs"][1]
        self._next_off = self._dtype.fields["next_obs"][1]
        slots = streams * ring
        self._frames = np.zeros((slots, layout.frame_bytes), np.uint8)
        self._epos = np.zeros(slots, np.uint8)
        self._action = np.zeros(slots, np.int32)
        self._reward = np.zeros(slots, np.float32)
        self._discount = np.zeros(slots, np.float32)
        self._k = np.zeros(slots, np.int32)  # next_pos - obs_pos
        self._vidx = np.full(slots, -1, np.int64)  # of the transition starting here, -1: none
        self._heads = np.zeros(streams, np.int64)
        self._positions = np.arange(streams, dtype=np.int64)
        self._stream_stamp = np.zeros(streams, np.int64)
        self._live = 0
        self._inserted = 0
        self.dropped = 0  # transitions refused because a frame of theirs had left the ring

    @staticmethod
    def bytes_needed(capacity: int, layout: FrameLayout, streams: int) -> int:
        """An upper bound on what a memory takes, before allocating it: per slot a frame, its
        episode position (1), action, reward, discount, k (4 each), a virtual index (8) and
        the sum tree's share (as ReplayMemory.bytes_needed: 2 x 8 + 4 + 4), plus the tree's
        top (prefix sums over at most 4096 nodes, with their scratch: under 128 KiB)."""
        streams = int(streams)
        slots = streams * -(-int(capacity) // streams)
        per_slot = layout.frame_bytes + 1 + 4 * 4 + 8 + 2 * 8 + 4 + 4
        return slots * per_slot + streams * 8 + (128 << 10)

    # --- basics -----------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """As asked; the rings hold streams * ceil(capacity / streams) frames."""
        return self._capacity

    @property
    def layout(self) -> FrameLayout:
        return self._layout

    @property
    def streams(self) -> int:
        return self._streams

    @property
    def ring(self) -> int:
        """Frames kept per stream."""
        return self._ring

    @property
    def dtype(self) -> np.dtype:
        """Of the sampled records: transition_dtype(obs_shape, uint8)."""
        return self._dtype

    @property
    def inserted(self) -> int:
        """Transitions ever stored (dropped ones not counted)."""
        return self._inserted

    @property
    def nbytes(self) -> int:
        own = (self._frames, self._epos, self._action, self._reward, self._discount, self._k,
               self._vidx, self._heads)
        return sum(a.nbytes for a in own) + self._tree.nbytes

    def __len__(self) -> int:
        """Live transitions."""
        return self._live

    def head(self, streams: np.ndarray) -> np.ndarray:
        """Frames written so far to each stream: the position its next frame gets."""
        return self._heads[self._check_streams(streams)]

    def _check_streams(self, streams: np.ndarray) -> np.ndarray:
        s = np.asarray(streams)
        if s.dtype.kind not in "iu":
            raise TypeError(f"streams must be integers, got {s.dtype}")
        s = s.astype(np.int64, copy=False).reshape(-1)
        if s.size and (s.min() < 0 or s.max() >= self._streams):
            raise ValueError(f"stream ids must be in [0, {self._streams})")
        return s

    def _distinct(self, s: np.ndarray) -> bool:
        """Stamp each stream with its position in s and read back: a repeated id keeps only
        one of its positions (cheaper than np.unique at these sizes)."""
        order = self._positions[: s.size]
        self._stream_stamp[s] = order
        return np.array_equal(self._stream_stamp[s], order)

    # --- writing ----------------------------------------------------------------------------

    def add_frames(self, streams: np.ndarray, frames: np.ndarray,
                   episode_pos: np.ndarray) -> np.ndarray:
        """Append T frames to each of K streams; the position of frames[0] in each, (K,) int64.

        frames: (T, K, *frame_shape) uint8 (bool is viewed as uint8); episode_pos: (T, K), 0 at
        an episode's first frame. The frames overwritten kill every transition that needs one
        (a frame of its obs or next_obs stack)."""
        s = self._check_streams(streams)
        kk = s.size
        if kk > self._streams or not self._distinct(s):
            raise ValueError("stream ids must be distinct")
        frames = np.asarray(frames)
        if frames.dtype == np.bool_:
            frames = frames.view(np.uint8)
        if frames.dtype != np.uint8:
            raise TypeError(f"frames must be uint8 or bool, got {frames.dtype}")
        fs = self._layout.frame_shape
        if frames.ndim != 2 + len(fs) or frames.shape[1] != kk or frames.shape[2:] != fs:
            raise ValueError(f"frames have shape {frames.shape}, expected (T, {kk}, *{fs})")
        t = frames.shape[0]
        epos = np.asarray(episode_pos)
        if epos.shape != (t, kk):
            raise ValueError(f"episode_pos has shape {epos.shape}, expected {(t, kk)}")
        if epos.dtype != np.uint8:
            if epos.dtype.kind not in "iu":
                raise TypeError(f"episode_pos must be integers, got {epos.dtype}")
            if epos.size and (epos.min() < 0 or epos.max() > EPISODE_POS_MAX):
                raise ValueError(f"episode_pos must be in [0, {EPISODE_POS_MAX}]")
            epos = epos.astype(np.uint8)
        old = self._heads[s]  # a copy
        if t == 0:
            return old
        ring = self._ring
        new = old + t
        kept = min(t, ring)  # of more frames than the ring holds only the newest land
        pos = new[None, :] + np.arange(-kept, 0, dtype=np.int64)[:, None]  # (kept, K)
        slots = (s * ring)[None, :] + pos % ring
        self._kill_overwritten(s, old, new, slots.reshape(-1))
        flat = slots.reshape(-1)
        self._frames[flat] = frames[t - kept :].reshape(kept * kk, -1)
        self._epos[flat] = epos[t - kept :].reshape(-1)
        self._heads[s] = new
        return old

    def _kill_overwritten(self, s: np.ndarray, old: np.ndarray, new: np.ndarray,
                          written: np.ndarray) -> None:
        """Kill the transitions that need a frame about to leave the ring: any held by a slot
        being written (its obs frame goes), and those at positions p in [b, b + stack - 1),
        b = new - R, whose obs or next_obs stack reaches back below b. A stack looks back at
        most stack - 1 frames and next_pos > obs_pos, so no other transition can need one."""
        dying = written[self._vidx[written] >= 0]
        st, ring = self._layout.stack, self._ring
        if st > 1:
            b = new - ring
            p = b[:, None] + np.arange(st - 1, dtype=np.int64)[None, :]  # (K, stack - 1)
            maybe = (p >= 0) & (p < old[:, None])  # a transition ends before the old head
            p, ss = p[maybe], np.broadcast_to(s[:, None], maybe.shape)[maybe]
            slot = ss * ring + p % ring
            hit = self._vidx[slot] == p * self._streams + ss
            if hit.any():
                bb = np.broadcast_to(b[:, None], maybe.shape)[maybe][hit]
                p, ss, slot = p[hit], ss[hit], slot[hit]
                dying = np.concatenate([dying, slot[self._oldest(p, ss * ring, slot) < bb]])
        if dying.size:
            self._vidx[dying] = -1
            self._tree.set_unchecked(dying.astype(np.intp, copy=False), np.zeros(dying.size))
            self._live -= dying.size

    def _oldest(self, p: np.ndarray, base: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """The oldest frame position that the transitions at (slot, position p) need."""
        st, ring = self._layout.stack, self._ring
        q = p + self._k[slot]
        back = np.minimum(self._epos[slot], st - 1)
        next_back = np.minimum(self._epos[base + q % ring], st - 1)
        return np.minimum(p - back, q - next_back)

    def add(self, streams: np.ndarray, obs_pos: np.ndarray, actions: np.ndarray,
            rewards: np.ndarray, discounts: np.ndarray, next_pos: np.ndarray,
            td_errors: np.ndarray | None = None) -> np.ndarray:
        """Store M transitions; their virtual indices (int64), -1 for each one dropped because
        a frame of its stacks had already left the ring (counted in `dropped`).

        next_pos must be after obs_pos and before the stream's head, and at most one transition
        starts at a (stream, position): else ValueError (the caller's bug), and nothing changed.
        Without TD errors a transition gets the running max priority."""
        s = self._check_streams(streams)
        p = np.asarray(obs_pos, np.int64).reshape(-1)
        q = np.asarray(next_pos, np.int64).reshape(-1)
        m = s.size
        columns = (p, q, np.reshape(actions, -1), np.reshape(rewards, -1),
                   np.reshape(discounts, -1))
        if any(c.size != m for c in columns):
            raise ValueError("streams, obs_pos, actions, rewards, discounts and next_pos "
                             "must have one entry per transition")
        if td_errors is None:
            prios, top = np.full(m, self._max_priority), self._max_priority
        else:
            prios, top = self._priority(np.reshape(td_errors, -1))
            if prios.shape != (m,):
                raise ValueError(f"{prios.size} td_errors for {m} transitions")
        if m == 0:
            return np.empty(0, np.int64)
        head = self._heads[s]
        if not (q > p).all() or not (q < head).all() or p.min() < 0:
            raise ValueError("each transition needs 0 <= obs_pos < next_pos < its stream's head")
        ring = self._ring
        start = np.maximum(head - ring, 0)  # the oldest position still in each ring
        base = s * ring
        slot = base + p % ring
        # the oldest frame either stack needs is <= p, so where p < start this drops it
        # whatever the episode position read from the slot (another frame's) says
        back = np.minimum(self._epos[slot], self._layout.stack - 1)
        next_back = np.minimum(self._epos[base + q % ring], self._layout.stack - 1)
        keep = np.minimum(p - back, q - next_back) >= start
        vidx = p * self._streams + s
        ks, (a, r, d) = q - p, columns[2:]
        n_keep = int(np.count_nonzero(keep))
        if n_keep < m:
            slot, ks, prios, a, r, d = (c[keep] for c in (slot, ks, prios, a, r, d))
            vkeep, vidx = vidx[keep], np.where(keep, vidx, -1)
        else:
            vkeep = vidx
        if n_keep and ((self._vidx[slot] >= 0).any() or (n_keep > 1 and self._repeats(slot))):
            raise ValueError("a transition already starts at that stream and position")
        self._max_priority = max(self._max_priority, top)  # no more refusals from here
        self.dropped += m - n_keep
        if n_keep == 0:
            return vidx
        self._action[slot] = a
        self._reward[slot] = r
        self._discount[slot] = d
        self._k[slot] = ks
        self._vidx[slot] = vkeep
        self._live += n_keep
        self._tree.set_unchecked(slot.astype(np.intp, copy=False), prios)
        self._inserted += n_keep
        return vidx

    def _repeats(self, slot: np.ndarray) -> bool:
        """Whether empty slots repeat: stamp each with its position in the batch (in the
        virtual index array, -1 again afterwards) and read back; cheaper than np.unique."""
        order = np.arange(slot.size, dtype=np.int64)
        self._vidx[slot] = order
        repeated = not np.array_equal(self._vidx[slot], order)
        self._vidx[slot] = -1
        return repeated

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """New priorities by virtual index; dead (or -1) ones are ignored, and with repeated
        indices the last one wins. Every priority set counts toward the running max."""
        vidx = np.asarray(indices, np.int64).reshape(-1)
        td = np.asarray(td_errors, np.float64).reshape(-1)
        if vidx.shape != td.shape:
            raise ValueError(f"{td.size} td_errors for {vidx.size} indices")
        p, s = np.divmod(vidx, self._streams)
        slots = s * self._ring + p % self._ring
        live = (self._vidx[slots] == vidx) & (vidx >= 0)
        if not live.all():
            slots, td = slots[live], td[live]
            if slots.size == 0:
                return
        prios, top = self._priority(td)
        if top > self._max_priority:
            self._max_priority = top
        self._tree.set_unchecked(slots.astype(np.intp, copy=False), prios)

    # --- sampling ---------------------------------------------------------------------------

    def sample(self, n: int, beta: float, p_min: float | None = None) -> SampleBatch:
        """n transitions drawn as ReplayMemory.sample draws them, their stacks rebuilt into
        fresh records of `dtype`."""
        if self._live == 0:
            raise ValueError("cannot sample from an empty frame memory")
        slots, weights = self._draw(n, beta, p_min)
        records = np.empty(slots.size, self._dtype)
        _kernel()(self._frames, self._epos, self._k, slots, self._ring, self._layout.stack,
                  records.view(np.uint8).reshape(slots.size, self._dtype.itemsize),
                  self._obs_off, self._next_off)
        records["action"] = self._action.take(slots)
        records["reward"] = self._reward.take(slots)
        records["discount"] = self._discount.take(slots)
        return SampleBatch(records, self._vidx.take(slots), weights)

    # --- statistics -------------------------------------------------------------------------

    def stats(self, bins: int = 24) -> MemoryStats:
        """Size, totals and a log-spaced histogram of the live transitions' priorities."""
        return self._stats(self._live, self._capacity, self._tree.leaves, bins, has_zeros=True)

    # --- persistence (no pickle) ------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """One .npz of plain arrays plus a JSON header, written atomically (as ReplayMemory)."""
        meta = {
            "kind": SNAPSHOT_KIND,
            "version": SNAPSHOT_VERSION,
            "capacity": self._capacity,
            "streams": self._streams,
            "layout": self._layout.to_dict(),
            "alpha": self.alpha,
            "eps": self.eps,
            "max_priority": self._max_priority,
            "inserted": self._inserted,
            "dropped": self.dropped,
            "rng": self._rng.bit_generator.state,
        }
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, frames=self._frames, episode_pos=self._epos, action=self._action,
                     reward=self._reward, discount=self._discount, k=self._k, vidx=self._vidx,
                     heads=self._heads, priorities=self._tree.leaves,
                     meta=np.array(json.dumps(meta)))
            f.flush()
            os.fsync(f.fileno())

    @classmethod
    def load(cls, path: str | Path, seed: int | None = None) -> FrameMemory:
        """The memory saved at path; its random generator continues where it was saved unless
        a seed is given. Raises FileNotFoundError, or ValueError naming the file if corrupt."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"frame memory snapshot not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"][()]))
                if meta.get("kind") != SNAPSHOT_KIND:
                    raise ValueError("not a frame memory snapshot")
                if meta.get("version") != SNAPSHOT_VERSION:
                    raise ValueError(f"unknown snapshot version {meta.get('version')!r}")
                mem = cls(int(meta["capacity"]), FrameLayout.from_dict(meta["layout"]),
                          int(meta["streams"]), float(meta["alpha"]), float(meta["eps"]), seed)
                arrays = {name: data[name] for name in
                          ("episode_pos", "action", "reward", "discount", "k", "vidx",
                           "heads", "priorities")}
            arrays["frames"] = _read_member_into(path, "frames.npy", mem._frames)
            mem._restore(arrays)
            mem._max_priority = float(meta["max_priority"])
            mem._inserted, mem.dropped = int(meta["inserted"]), int(meta["dropped"])
            if seed is None:
                mem._rng.bit_generator.state = meta["rng"]
        except FileNotFoundError:
            raise
        except _SNAPSHOT_ERRORS as exc:
            raise ValueError(f"corrupt frame memory snapshot {path}: {exc}") from None
        return mem

    def _restore(self, a: dict[str, np.ndarray]) -> None:
        """Fill from a snapshot's arrays after checking that they describe a memory this one
        could have become: right shapes, and each live transition where its index says, its
        frames in the ring, its priority finite and > 0 (empty slots 0)."""
        own = {"frames": self._frames, "episode_pos": self._epos, "action": self._action,
               "reward": self._reward, "discount": self._discount, "k": self._k,
               "vidx": self._vidx, "heads": self._heads}
        for name, dst in own.items():
            if a[name].shape != dst.shape or a[name].dtype != dst.dtype:
                raise ValueError(f"{name} is {a[name].dtype}{list(a[name].shape)}, expected "
                                 f"{dst.dtype}{list(dst.shape)}")
        prios = a["priorities"].astype(np.float64, copy=False)
        if prios.shape != self._vidx.shape:
            raise ValueError("priorities do not match the slots")
        heads, vidx, ring = a["heads"], a["vidx"], self._ring
        if heads.min() < 0:
            raise ValueError("negative stream head")
        slots = np.flatnonzero(vidx >= 0)
        v = vidx[slots]
        p, s = np.divmod(v, self._streams)
        if not np.array_equal(s * ring + p % ring, slots):
            raise ValueError("virtual indices do not match their slots")
        start = np.maximum(heads[s] - ring, 0)
        k = a["k"][slots]
        if slots.size and not ((k > 0).all() and (p + k < heads[s]).all()):
            raise ValueError("a transition's next_pos is not inside its stream")
        np.copyto(self._epos, a["episode_pos"])
        np.copyto(self._k, a["k"])
        if slots.size and (self._oldest(p, s * ring, slots) < start).any():
            raise ValueError("a live transition needs a frame outside the ring")
        empty = np.ones(prios.size, bool)
        empty[slots] = False
        if not np.isfinite(prios).all() or (prios[slots] <= 0.0).any() or prios[empty].any():
            raise ValueError("priorities must be finite, > 0 where live and 0 where empty")
        for name in ("frames", "action", "reward", "discount", "vidx", "heads"):
            if a[name] is not own[name]:  # frames are read in place (_read_member_into)
                np.copyto(own[name], a[name])
        self._tree.set_range(0, prios)
        self._live = int(slots.size)


def _read_member_into(path: Path, member: str, out: np.ndarray) -> np.ndarray:
    """An .npz member read straight into `out`, whose dtype and shape it must have: the
    frames are nearly all of a snapshot (6.6 GB at 1M Atari transitions), and np.load would
    hold a second copy of them while restoring."""
    with zipfile.ZipFile(path) as z, z.open(member) as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        if shape != out.shape or dtype != out.dtype or fortran:
            name = member.removesuffix(".npy")
            raise ValueError(f"{name} is {dtype}{list(shape)}, expected "
                             f"{out.dtype}{list(out.shape)}")
        view = memoryview(out.reshape(-1).view(np.uint8))
        at, chunk = 0, 1 << 20  # zipfile reads a chunk into a bytes object first
        while at < view.nbytes:
            n = f.readinto(view[at : at + chunk])
            if not n:
                raise EOFError(f"{member} ends after {at:,} of {view.nbytes:,} bytes")
            at += n
    return out
