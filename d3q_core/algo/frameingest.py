"""The replay's side of a pixel simulator's frame streams (d3q_core.algo.framestreams): its
frames into the memory's rings, its frame references to positions in them.

Simulator i's K env copies own streams j*K .. j*K + K - 1 of its replay shard, j = i //
shards (simulator i feeds shard i mod shards). A simulator's references count from the
start of its incarnation, so each new incarnation is anchored where its streams stand (the
memory's heads); its first frames begin episodes, so no stack reaches back into the frames
of the incarnation before. Leftovers of an older incarnation that arrive after the new one
has spoken are dropped: they would land at the wrong positions.

Frames must be stored in the order they were made. A local simulator's socket keeps it; a
Ray actor may run one caller's calls out of order (its threads take them as they come), so
each message carries its number within its incarnation and one that comes early waits here
for those before it (at most `replay.queue_batches` can be in flight).
"""

from __future__ import annotations

import numpy as np

from d3q_core.algo.framememory import FrameMemory
from d3q_core.algo.framestreams import FrameChunk


def streams_needed(n_simulators: int, k: int, shards: int, shard: int | None = None) -> int:
    """Streams in a shard's memory: its simulators (i mod shards == shard), K each; without
    a shard, the most any shard has."""
    if shard is None:
        return -(-n_simulators // shards) * k
    return max(1, len(range(shard, n_simulators, shards))) * k  # an idle shard: still valid


class FrameIngest:
    """One replay shard's ingest: each simulator's anchor, message order and early ones."""

    def __init__(self, memory: FrameMemory, k: int, shards: int = 1):
        self.memory, self.k, self.shards = memory, k, shards
        self._copies = np.arange(k, dtype=np.int64)
        self._incarnation: dict[int, int] = {}
        self._base: dict[int, np.ndarray] = {}  # simulator -> position of its frame 0, per copy
        self._next_seq: dict[int, int] = {}  # simulator -> the message number due next
        self._early: dict[tuple[int, int], tuple] = {}  # (simulator, seq) -> message held
        self.stale = 0  # messages dropped from an incarnation that had been replaced

    def streams_of(self, simulator: int) -> np.ndarray:
        return (simulator // self.shards) * self.k + self._copies

    def add(self, simulator: int, incarnation: int, frames: FrameChunk | None,
            records: np.ndarray, priorities: np.ndarray | None, seq: int | None = None
            ) -> np.ndarray:
        """Store a message's frames, then its transitions (and those of the messages that
        came early and waited for it); their virtual indices (-1 where the memory dropped
        one; none for a replaced incarnation's leftovers or a message that must wait).
        `seq`: the message's number in its incarnation (None: taken as in order)."""
        known = self._incarnation.get(simulator, -1)
        if incarnation < known:
            self.stale += 1
            return np.zeros(0, np.int64)
        if incarnation > known:
            self._incarnation[simulator] = incarnation
            self._base[simulator] = self.memory.head(self.streams_of(simulator)).astype(
                np.int64)
            self._next_seq[simulator] = 0
            for key in [key for key in self._early if key[0] == simulator]:
                del self._early[key]  # the replaced incarnation's early ones
        if seq is not None and seq != self._next_seq[simulator]:
            self._early[(simulator, seq)] = (frames, records, priorities)
            return np.zeros(0, np.int64)
        out = [self._store(simulator, frames, records, priorities)]
        self._next_seq[simulator] += 1
        while (simulator, self._next_seq[simulator]) in self._early:
            out.append(self._store(simulator, *self._early.pop(
                (simulator, self._next_seq[simulator]))))
            self._next_seq[simulator] += 1
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _store(self, simulator: int, frames: FrameChunk | None, records: np.ndarray,
               priorities: np.ndarray | None) -> np.ndarray:
        streams = self.streams_of(simulator)
        base = self._base[simulator]
        if frames is not None and len(frames):
            self._add_frames(streams, frames)
        if not len(records):
            return np.zeros(0, np.int64)
        refs, next_refs = records["obs"][:, 0], records["next_obs"][:, 0]
        copy, next_copy = refs % self.k, next_refs % self.k
        return self.memory.add(streams[copy], base[copy] + refs // self.k, records["action"],
                               records["reward"], records["discount"],
                               base[next_copy] + next_refs // self.k, priorities)

    def _add_frames(self, streams: np.ndarray, chunk: FrameChunk) -> None:
        """One call when every copy added one frame a step (the usual chunk: step-major, no
        episode started), else one call per copy, its frames in order."""
        k, n = self.k, len(chunk)
        copies = chunk.copies
        if n % k == 0 and np.array_equal(copies, np.tile(self._copies, n // k)):
            t = n // k
            self.memory.add_frames(streams, chunk.frames.reshape(t, k, *chunk.frames.shape[1:]),
                                   chunk.episode_pos.reshape(t, k))
            return
        for c in np.unique(copies):
            mine = copies == c
            self.memory.add_frames(streams[c : c + 1], chunk.frames[mine][:, None],
                                   chunk.episode_pos[mine][:, None])
