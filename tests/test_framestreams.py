"""A pixel simulator's frame streams through the replay's ingest into the frame memory: every
sampled transition must be the very (obs, action, reward, next_obs, discount) an n-step
buffer over whole stacks makes from the same play, with episode starts (whose first stacks
hold distinct frames, as ale-py's no-op starts make them), lost lives, ring wraps and a
simulator restarted mid-stream."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.algo.frameingest import FrameIngest, streams_needed
from d3q_core.algo.framememory import FrameLayout, FrameMemory
from d3q_core.algo.framestreams import FrameStreams
from d3q_core.algo.nstep import NStepBuffer
from d3q_core.algo.transitions import REF_DTYPE, transition_dtype

FRAME = (2, 3)


class StackEnv:
    """K copies of an env whose frames are all distinct (a counter written into them), in
    stacks of S; episodes end at random, and an episode's first stack is S fresh frames;
    next-step autoreset as gymnasium's vector envs do it."""

    def __init__(self, k: int, stack: int, rng: np.random.Generator, p_end: float = 0.08):
        self.k, self.stack, self.rng, self.p_end = k, stack, rng, p_end
        self.counter = 0
        self.obs = np.stack([self._fresh_stack() for _ in range(k)])
        self.ended = np.zeros(k, bool)

    def _frame(self) -> np.ndarray:
        self.counter += 1
        return np.full(FRAME, self.counter % 251, np.uint8) + \
            np.arange(6, dtype=np.uint8).reshape(FRAME) * (self.counter // 251 % 40)

    def _fresh_stack(self) -> np.ndarray:
        return np.stack([self._frame() for _ in range(self.stack)])

    def step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        nxt = self.obs.copy()
        rew = self.rng.normal(size=self.k)
        term = np.zeros(self.k, bool)
        trunc = np.zeros(self.k, bool)
        for e in range(self.k):
            if self.ended[e]:
                nxt[e] = self._fresh_stack()
                rew[e] = 0.0
                self.ended[e] = False
                continue
            nxt[e] = np.concatenate([self.obs[e, 1:], self._frame()[None]])
            u = self.rng.random()
            term[e], trunc[e] = u < self.p_end, self.p_end <= u < 1.5 * self.p_end
            self.ended[e] = term[e] or trunc[e]
        self.obs = nxt
        return nxt, rew, term, trunc


def play(stack: int, k: int, steps: int, capacity: int, seed: int, restart_at: int | None = None,
         n: int = 3):
    """Play, ingest, and return (memory, {virtual index: the true record})."""
    rng = np.random.default_rng(seed)
    env = StackEnv(k, stack, rng)
    layout = FrameLayout(FRAME, stack)
    obs_shape = layout.obs_shape
    flat = int(np.prod(obs_shape))
    memory = FrameMemory(capacity, layout, streams_needed(1, k, 1), seed=seed)
    ingest = FrameIngest(memory, k)
    truth: dict[int, np.void] = {}
    incarnation = 0

    def begin():
        s = FrameStreams(k, stack, FRAME)
        s.start(env.obs.reshape(k, *obs_shape))
        return (s, NStepBuffer(k, n, 0.9, REF_DTYPE, 4),
                NStepBuffer(k, n, 0.9, transition_dtype(flat, np.uint8), 4),  # 1-D obs
                np.ones(k, bool))

    streams, refs, whole, valid = begin()
    for t in range(steps):
        if restart_at is not None and t == restart_at:  # a new incarnation: episodes restart
            incarnation += 1
            env.ended[:] = True
            env.step()  # every copy now at a fresh first stack
            streams, refs, whole, valid = begin()
        actions = rng.integers(0, 4, k)
        obs = env.obs.reshape(k, *obs_shape).copy()
        q = rng.normal(size=(k, 4)).astype(np.float32)
        nxt, rew, term, trunc = env.step()
        nxt = nxt.reshape(k, *obs_shape)
        obs_ref = streams.refs()
        streams.step(nxt, ~valid)
        refs.push(obs_ref, actions, rew, streams.refs(), term, trunc, valid, q)
        whole.push(obs.reshape(k, flat), actions, rew, nxt.reshape(k, flat), term, trunc,
                   valid, q)
        valid = ~refs.done
        if t % 4 == 3:
            got, want = refs.take(), whole.take()
            assert (got is None) == (want is None)
            chunk = streams.take()
            if got is None:
                ingest.add(0, incarnation, chunk, np.zeros(0, REF_DTYPE), None)
                continue
            records, prios = got
            np.testing.assert_array_equal(prios, want[1])
            vidx = ingest.add(0, incarnation, chunk, records, prios)
            assert len(vidx) == len(records) and (vidx >= 0).all()
            truth.update(zip(vidx.tolist(), want[0], strict=True))
    return memory, truth


@pytest.mark.parametrize("stack,capacity,restart", [(4, 4000, None), (4, 300, None),
                                                     (1, 500, None), (4, 400, 150)])
def test_sampled_records_are_the_stacks_the_env_played(stack, capacity, restart):
    memory, truth = play(stack, k=3, steps=400, capacity=capacity, seed=stack + capacity,
                         restart_at=restart)
    assert len(memory) > 0
    seen = 0
    for _ in range(20):
        batch = memory.sample(32, beta=0.5)
        for rec, vidx in zip(batch.records, batch.indices, strict=True):
            want = truth[int(vidx)]
            for field in ("obs", "action", "reward", "next_obs", "discount"):
                np.testing.assert_array_equal(rec[field].ravel(), want[field], err_msg=field)
            seen += 1
    assert seen == 640


def test_a_replaced_incarnations_leftovers_are_dropped():
    layout = FrameLayout(FRAME, 4)
    memory = FrameMemory(400, layout, 2)
    ingest = FrameIngest(memory, 2)
    first = FrameStreams(2, 4, FRAME)
    first.start(np.zeros((2, 4, *FRAME), np.uint8))
    late = first.take()
    second = FrameStreams(2, 4, FRAME)
    second.start(np.ones((2, 4, *FRAME), np.uint8))
    ingest.add(0, 1, second.take(), np.zeros(0, REF_DTYPE), None)
    heads = memory.head(np.arange(2)).copy()
    assert len(ingest.add(0, 0, late, np.zeros(0, REF_DTYPE), None)) == 0
    assert ingest.stale == 1
    np.testing.assert_array_equal(memory.head(np.arange(2)), heads)


def test_messages_that_come_early_wait_for_those_before_them():
    """As a Ray actor may run one simulator's calls: 2, 0, 1. Stored in order, every stack
    equals the one stored in order from the start."""
    layout = FrameLayout(FRAME, 4)
    chunks = []
    streams = FrameStreams(2, 4, FRAME)
    streams.start(np.arange(2 * 4 * 6, dtype=np.uint8).reshape(2, 4, *FRAME))
    for t in range(3):
        nxt = np.full((2, 4, *FRAME), 100 + t, np.uint8)
        streams.step(nxt, np.zeros(2, bool))
        chunks.append(streams.take())
    ordered, shuffled = (FrameMemory(400, layout, 2) for _ in range(2))
    a, b = FrameIngest(ordered, 2), FrameIngest(shuffled, 2)
    none = np.zeros(0, REF_DTYPE)
    for seq in (0, 1, 2):
        a.add(0, 0, chunks[seq], none, None, seq)
    b.add(0, 0, chunks[2], none, None, 2)
    assert shuffled.head(np.arange(2)).tolist() == [0, 0]  # 2 waits
    b.add(0, 0, chunks[0], none, None, 0)
    assert shuffled.head(np.arange(2)).tolist() == [5, 5]  # 0 stored, 2 still waits for 1
    b.add(0, 0, chunks[1], none, None, 1)
    assert shuffled.head(np.arange(2)).tolist() == ordered.head(np.arange(2)).tolist() == [7, 7]
    np.testing.assert_array_equal(shuffled._frames, ordered._frames)


def test_streams_of_a_shard_number_its_simulators_apart():
    assert streams_needed(5, 16, 2) == 48
    ingest = FrameIngest(FrameMemory(10_000, FrameLayout(FRAME, 1), 48), 16, shards=2)
    assert list(ingest.streams_of(4)[[0, -1]]) == [32, 47]  # simulator 4 is shard 0's third


def test_each_shard_has_a_stream_for_each_env_copy_of_its_own_simulators():
    assert [streams_needed(3, 16, 2, shard) for shard in (0, 1)] == [32, 16]
    assert streams_needed(1, 4, 3, 2) == 4  # a shard without simulators stays a memory
