"""Samples and answers through FIFOs between replay shards and the learner on one machine
(backends/ray/fifo.py; no Ray needed): batches arrive whole, answers go back to their shard,
neither side waits for the other to start, and either side's end is the other's EOF."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from d3q_core.backends.ray.fifo import (
    FifoSampleReceiver,
    FifoSampleSender,
    make_fifos,
    remove_fifos,
)

DTYPE = np.dtype([("obs", np.float32, 4), ("action", np.int64)])
ROWS = 8


@pytest.fixture
def folder():
    f = make_fifos(2)
    yield f
    remove_fifos(f)


def _batch(shard: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    records = np.zeros(ROWS, DTYPE)
    records["obs"] = shard * 100 + k
    records["action"] = np.arange(ROWS)
    return records, np.arange(ROWS, dtype=np.int64) + 1000 * shard + 10 * k, \
        np.full(ROWS, 0.5 + shard, np.float32)


def _pair(folder, totals=dict):
    learner = FifoSampleReceiver(folder, 2, DTYPE, SimpleNamespace(value=ROWS), totals)
    replays = [FifoSampleSender(folder, s, DTYPE, depth=4) for s in range(2)]
    for r in replays:
        r.configure(ROWS)
    return learner, replays


def test_neither_side_waits_for_the_other_to_open(folder):
    replay = FifoSampleSender(folder, 0, DTYPE, depth=4)
    replay.configure(ROWS)
    assert not replay.has_room() and not replay.broken  # no learner yet: later, not never
    learner = FifoSampleReceiver(folder, 2, DTYPE, SimpleNamespace(value=ROWS))
    assert replay.has_room()
    assert replay.send(*_batch(0, 0))
    got = None
    while got is None:
        got = learner.get(timeout=0.5)
    assert got[1][0] == 0
    learner.close()
    replay.close()


def test_batches_arrive_whole_and_answers_go_back_to_their_shard(folder):
    learner, replays = _pair(folder)
    for s, r in enumerate(replays):
        assert r.send(*_batch(s, 0))
    seen = set()
    for _ in range(2):
        records, indices, weights = learner.get(timeout=1.0)
        shard = int(indices[0]) // 1000
        expected = _batch(shard, 0)
        np.testing.assert_array_equal(records, expected[0])
        np.testing.assert_array_equal(weights, expected[2])
        learner.answer(indices, np.full(ROWS, shard + 0.25, np.float32))
        seen.add(shard)
    assert seen == {0, 1}
    for s, r in enumerate(replays):
        (idx, td), = r.answers()
        assert idx[0] == 1000 * s and np.all(td == s + 0.25)
        assert r.outstanding == 0
    learner.close()
    for r in replays:
        r.close()


def test_a_shard_is_chosen_in_proportion_to_its_priority_total(folder):
    learner, replays = _pair(folder, totals=lambda: {0: (1.0, 0.1), 1: (3.0, 0.1)})
    picks = []
    for _ in range(400):
        for s, r in enumerate(replays):
            if r.outstanding == 0:
                r.send(*_batch(s, 0))
        _, indices, _ = learner.get(timeout=1.0)
        picks.append(int(indices[0]) // 1000)
        learner.answer(indices, np.ones(ROWS, np.float32))
        for r in replays:
            r.answers()
    assert 0.65 < np.mean(picks) < 0.85  # 3 / (1 + 3) with both waiting


def test_a_replay_that_ends_is_the_learners_eof_and_the_other_way(folder):
    learner, replays = _pair(folder)
    replays[0].send(*_batch(0, 0))
    assert learner.get(timeout=1.0) is not None
    replays[0].close()
    with pytest.raises(EOFError):
        for _ in range(10):
            learner.get(timeout=0.2)
    learner.close()
    assert not replays[1].send(*_batch(1, 0))  # no reader: the write fails, nothing waits
    assert replays[1].broken and not replays[1].has_room()
    replays[1].close()
