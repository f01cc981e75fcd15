"""A pixel simulator's K env copies as K streams of frames, each frame sent once.

An observation is a stack of the last S frames (Atari: S = 4; MinAtar: S = 1, the frame
itself). Consecutive observations share S - 1 frames and a transition's next_obs is the obs
n steps later, so the simulator sends each new frame once, with its position in its episode,
and refers to observations by frame: a reference is `position * K + copy`, where position
counts the frames of that copy's stream. The replay (d3q_core.algo.framememory) keeps one
ring of frames per stream and rebuilds the stacks when it samples.

Every episode starts with its whole first stack (S frames, episode positions 0..S-1): the
first observation of an episode need not repeat one frame (ale-py's no-op starts fill it
with real frames, and after a lost life the stack goes on from the game), and storing it
whole makes the rebuilt stack exact whatever the env put in it. After that one frame a step:
the newest of next_obs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EPISODE_POS_CAP = 255  # episode positions are stored as uint8; a stack looks back S - 1 < 255


@dataclass(frozen=True, eq=False)
class FrameChunk:
    """New frames of a simulator's streams, in order within each stream."""

    copies: np.ndarray  # (F,) int32: which env copy (stream) each frame belongs to
    frames: np.ndarray  # (F, *frame_shape) uint8
    episode_pos: np.ndarray  # (F,) uint8: 0 at an episode's first frame, capped at 255

    def __len__(self) -> int:
        return len(self.copies)


class FrameStreams:
    """Frame positions per copy, and the frames not yet sent."""

    def __init__(self, k: int, stack: int, frame_shape: tuple[int, ...]):
        self.k, self.stack, self.frame_shape = k, stack, tuple(frame_shape)
        self.pos = np.full(k, -1, np.int64)  # position of each copy's newest frame
        self.episode_pos = np.zeros(k, np.int64)  # of each copy's newest frame
        self._arange = np.arange(k, dtype=np.int64)
        self._all = np.arange(k, dtype=np.int32)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.frames_sent = 0

    def _as_frames(self, obs: np.ndarray) -> np.ndarray:
        """(B, *obs_shape) -> (B, S, *frame_shape) uint8 (a view where it can be)."""
        obs = np.asarray(obs)
        if obs.dtype == np.bool_:
            obs = obs.view(np.uint8)
        return obs.reshape(len(obs), self.stack, *self.frame_shape)

    def refs(self) -> np.ndarray:
        """References of the copies' current observations, (K, 1) int64 (a new array)."""
        return (self.pos * self.k + self._arange)[:, None]

    def start(self, obs: np.ndarray, copies: np.ndarray | None = None) -> None:
        """Episodes begin for `copies` (all by default): their whole first stacks."""
        copies = self._all if copies is None else copies.astype(np.int32)
        if len(copies) == 0:
            return
        stacks = self._as_frames(obs)[copies]  # (B, S, *frame)
        s = self.stack
        self._pending.append((np.repeat(copies, s), stacks.reshape(-1, *self.frame_shape),
                              np.tile(np.arange(s, dtype=np.uint8), len(copies))))
        self.pos[copies] += s
        self.episode_pos[copies] = s - 1

    def step(self, next_obs: np.ndarray, new_episode: np.ndarray) -> None:
        """After a vector step: copies whose step was an autoreset step (`new_episode`)
        start over with a whole stack, the others add the newest frame of next_obs."""
        frames = self._as_frames(next_obs)
        if new_episode.any():
            self.start(next_obs, np.flatnonzero(new_episode))
            going = np.flatnonzero(~new_episode).astype(np.int32)
            newest = frames[going, -1]  # fancy indexing: a copy
        else:  # a copy: the env may write its next observations into the same buffer
            going, newest = self._all, frames[:, -1].copy()
        if len(going):
            self.episode_pos[going] = np.minimum(self.episode_pos[going] + 1, EPISODE_POS_CAP)
            self.pos[going] += 1
            self._pending.append((going, newest, self.episode_pos[going].astype(np.uint8)))

    def take(self) -> FrameChunk | None:
        """The frames since the last take, or None."""
        if not self._pending:
            return None
        copies, frames, eps = zip(*self._pending, strict=True)
        self._pending = []
        chunk = FrameChunk(np.concatenate(copies), np.concatenate(frames), np.concatenate(eps))
        self.frames_sent += len(chunk)
        return chunk
