"""ReplayMemory: sampling follows the priorities, IS weights, ring-buffer bookkeeping, snapshots."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from d3q_core.algo.memory import MemoryStats, ReplayMemory, SampleBatch
from d3q_core.algo.transitions import transition_dtype

DT = transition_dtype(4)


def records(start: int, n: int) -> np.ndarray:
    """Records tagged with their insertion number in `action`, to see which survived where."""
    r = np.zeros(n, DT)
    r["action"] = np.arange(start, start + n)
    r["obs"] = np.arange(start, start + n)[:, None] * np.ones(4)
    r["reward"] = 0.5
    return r


def priority(td, alpha=0.6, eps=1e-3):
    return (np.abs(td) + eps) ** alpha


def test_sampling_frequencies_follow_priorities():
    n = 40
    mem = ReplayMemory(n, DT, alpha=1.0, eps=0.01, seed=1234)
    td = np.linspace(0.0, 4.0, n) ** 2  # priorities from 0.01 to 16.01: three decades
    mem.add(records(0, n), td)
    counts = np.zeros(n)
    draws = 0
    for _ in range(400):
        s = mem.sample(64, beta=0.5)
        np.add.at(counts, s.indices, 1)
        draws += 64
    p = (td + 0.01) / (td + 0.01).sum()
    expected = draws * p
    chi2 = ((counts - expected) ** 2 / expected).sum()
    # 39 degrees of freedom: mean 39, sd ~9; stratification only lowers it. Uniform sampling,
    # or sampling by rank, would give thousands.
    assert chi2 < 90, chi2
    assert counts[0] < counts[-1] / 100


def test_importance_weights_by_hand():
    mem = ReplayMemory(4, DT, alpha=1.0, eps=1.0, seed=0)
    mem.add(records(0, 4), np.array([0.0, 1.0, 2.0, 3.0]))  # priorities 1, 2, 3, 4; total 10
    s = mem.sample(400, beta=0.5)
    assert isinstance(s, SampleBatch) and s.weights.dtype == np.float32
    # w_i = (N P(i))^-b / max_j (N P(j))^-b, N = 4, P = p/10, largest weight at p = 1
    by_hand = {1.0: 1.0, 2.0: (4 * 0.2) ** -0.5 / (4 * 0.1) ** -0.5, 3.0: (1 / 3) ** 0.5,
               4.0: 0.5}
    expect = np.array([by_hand[float(i + 1)] for i in s.indices], np.float32)
    np.testing.assert_allclose(s.weights, expect, rtol=1e-6)
    assert set(s.indices.tolist()) == {0, 1, 2, 3}
    np.testing.assert_array_equal(s.records["action"], s.indices)
    ones = mem.sample(16, beta=0.0).weights
    assert (ones == 1.0).all()


def test_add_wraps_around_and_returns_virtual_indices():
    mem = ReplayMemory(5, DT, seed=0)
    assert mem.capacity == 5 and len(mem) == 0
    np.testing.assert_array_equal(mem.add(records(0, 3)), [0, 1, 2])
    v = mem.add(records(3, 4))  # slots 3, 4, 0, 1
    assert v.dtype == np.int64 and v.tolist() == [3, 4, 5, 6]
    assert len(mem) == 5
    assert mem._records["action"].tolist() == [5, 6, 2, 3, 4]
    assert mem._vidx.tolist() == [5, 6, 2, 3, 4]
    seen = set()
    for _ in range(20):
        s = mem.sample(5, 0.4)
        np.testing.assert_array_equal(s.records["action"], s.indices)
        seen |= set(s.indices.tolist())
    assert seen == {2, 3, 4, 5, 6}


def test_batch_larger_than_capacity_keeps_the_newest():
    mem = ReplayMemory(5, DT, seed=0)
    mem.add(records(0, 2))
    v = mem.add(records(2, 12), np.arange(12.0))  # records 2..13; 9..13 survive
    assert v.tolist() == list(range(2, 14))
    assert len(mem) == 5
    assert sorted(mem._records["action"].tolist()) == [9, 10, 11, 12, 13]
    slots = np.arange(9, 14) % 5
    np.testing.assert_array_equal(mem._records["action"][slots], np.arange(9, 14))
    np.testing.assert_allclose(mem.priorities()[slots], priority(np.arange(7.0, 12.0)))
    mem.update_priorities([2, 3], [100.0, 100.0])  # overwritten at once: ignored
    assert mem.priorities().max() == pytest.approx(priority(11.0))


def test_update_to_overwritten_slots_is_ignored():
    mem = ReplayMemory(4, DT, seed=0)
    old = mem.add(records(0, 4), np.ones(4))
    mem.add(records(4, 2), np.ones(2))  # overwrites slots 0 and 1 (vidx 0, 1)
    before = mem.priorities().copy()
    mem.update_priorities(old[:2], [50.0, 60.0])
    np.testing.assert_array_equal(mem.priorities(), before)
    mem.update_priorities(old, [50.0, 60.0, 7.0, 8.0])  # mixed: only vidx 2 and 3 are live
    np.testing.assert_allclose(mem.priorities(), [before[0], before[1], priority(7.0),
                                                  priority(8.0)])
    assert mem.max_priority == pytest.approx(priority(8.0))
    mem.update_priorities([-1, 99], [5.0, 5.0])  # never-issued indices: ignored as well
    assert mem.max_priority == pytest.approx(priority(8.0))


def test_duplicate_indices_resolve_deterministically():
    results = []
    for _ in range(3):
        mem = ReplayMemory(8, DT, seed=0)
        v = mem.add(records(0, 8), np.ones(8))
        mem.update_priorities([v[2], v[5], v[2], v[2]], [1.0, 2.0, 30.0, 4.0])
        results.append(mem.priorities().copy())
    for r in results:
        np.testing.assert_array_equal(r, results[0])
    assert results[0][2] == pytest.approx(priority(4.0))  # the last of the three
    assert results[0][5] == pytest.approx(priority(2.0))


def test_each_transition_keeps_its_own_priority():
    mem = ReplayMemory(6, DT, seed=0)
    v = mem.add(records(0, 6), np.zeros(6))
    mem.update_priorities(v[[1, 4]], [3.0, 5.0])
    np.testing.assert_allclose(mem.priorities(), priority(np.array([0, 3.0, 0, 0, 5.0, 0])))
    assert mem._tree.total == pytest.approx(mem.priorities().sum())


def test_missing_priorities_get_the_running_max():
    mem = ReplayMemory(10, DT, alpha=0.5, eps=0.0001, seed=0)
    assert mem.max_priority == 1.0
    mem.add(records(0, 2))
    np.testing.assert_array_equal(mem.priorities(), [1.0, 1.0])
    mem.add(records(2, 2), np.array([8.0, 0.0]))  # priority of 8 ~ 2.83: a new max
    mem.add(records(4, 1))
    assert mem.priorities()[4] == pytest.approx(priority(8.0, 0.5, 0.0001))
    v = mem.add(records(5, 1), np.array([0.0]))
    mem.update_priorities(v, [99.0])  # updates raise the max too
    mem.add(records(6, 1))
    assert mem.priorities()[6] == pytest.approx(priority(99.0, 0.5, 0.0001))
    mem.update_priorities(v, [0.0])  # lowering it later does not lower the max
    mem.add(records(7, 1))
    assert mem.priorities()[7] == pytest.approx(priority(99.0, 0.5, 0.0001))


def test_refuses_bad_input():
    mem = ReplayMemory(4, DT, seed=0)
    with pytest.raises(ValueError, match="empty"):
        mem.sample(2, 0.4)
    with pytest.raises(TypeError):
        mem.add(np.zeros(2, transition_dtype(3)))
    with pytest.raises(ValueError):
        mem.add(records(0, 2), np.array([1.0, np.nan]))
    assert len(mem) == 0
    v = mem.add(records(0, 2), np.ones(2))
    with pytest.raises(ValueError):
        mem.update_priorities(v, [np.inf, 1.0])
    with pytest.raises(ValueError):
        mem.update_priorities(v, [1.0])
    with pytest.raises(ValueError):
        mem.sample(0, 0.4)
    with pytest.raises(ValueError):
        mem.sample(2, -0.1)
    tiny = ReplayMemory(4, DT, alpha=1000.0, seed=0)
    tiny.add(records(0, 2), np.zeros(2))  # 0.001 ** 1000 underflows to 0
    with pytest.raises(ValueError, match="0"):
        tiny.sample(2, 0.4)
    for kwargs in ({"capacity": 0}, {"eps": 0.0}, {"alpha": -1.0}):
        args = {"capacity": 4, "dtype": DT, **kwargs}
        with pytest.raises(ValueError):
            ReplayMemory(**args)


def test_stats_histogram_without_copying_records():
    mem = ReplayMemory(50_000, DT, seed=0)
    empty = mem.stats(bins=6)
    assert empty.size == 0 and empty.histogram == (0,) * 6 and len(empty.bin_edges) == 7
    rng = np.random.default_rng(0)
    mem.add(np.zeros(30_000, DT), rng.standard_normal(30_000) * 10)
    tracemalloc.start()
    st = mem.stats(bins=24)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < mem._records[:30_000].nbytes / 2  # a log of the priorities, not the records
    assert isinstance(st, MemoryStats)
    assert st.size == 30_000 and st.capacity == 50_000
    assert len(st.histogram) == 24 and len(st.bin_edges) == 25
    assert sum(st.histogram) == 30_000
    p = mem.priorities()
    assert st.bin_edges[0] == p.min() and st.bin_edges[-1] == p.max()
    ratios = np.diff(np.log(st.bin_edges))
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)  # log-spaced
    expected, _ = np.histogram(p, bins=np.array(st.bin_edges))
    assert np.abs(expected - np.array(st.histogram)).sum() <= 2  # edge rounding at most
    assert st.total == pytest.approx(p.sum()) and st.mean_priority == pytest.approx(p.mean())
    assert st.max_priority == p.max() <= mem.max_priority


def test_save_load_round_trip(tmp_path):
    mem = ReplayMemory(100, DT, alpha=0.7, eps=0.01, seed=5)
    rng = np.random.default_rng(1)
    mem.add(records(0, 130), rng.standard_normal(130))  # wrapped
    s = mem.sample(16, 0.4)
    mem.update_priorities(s.indices, rng.standard_normal(16) * 5)
    path = tmp_path / "replay.npz"
    mem.save(path)
    assert sorted(os.listdir(tmp_path)) == ["replay.npz"]  # no temp file left behind
    back = ReplayMemory.load(path)
    assert (back.capacity, len(back), back.inserted) == (100, 100, 130)
    assert (back.alpha, back.eps, back.max_priority) == (0.7, 0.01, mem.max_priority)
    assert back.dtype == DT
    np.testing.assert_array_equal(back._records, mem._records)
    np.testing.assert_array_equal(back._vidx, mem._vidx)
    np.testing.assert_array_equal(back.priorities(), mem.priorities())
    assert back._tree.total == mem._tree.total and back._tree.min == mem._tree.min
    for _ in range(5):  # the generator resumes where it was saved: identical samples
        a, b = mem.sample(32, 0.6), back.sample(32, 0.6)
        np.testing.assert_array_equal(a.records, b.records)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.weights, b.weights)
        td = rng.standard_normal(32)
        mem.update_priorities(a.indices, td)
        back.update_priorities(b.indices, td)
    x, y = ReplayMemory.load(path, seed=9), ReplayMemory.load(path, seed=9)
    np.testing.assert_array_equal(x.sample(64, 0.4).indices, y.sample(64, 0.4).indices)


def test_save_load_partly_filled_and_overwrite(tmp_path):
    path = tmp_path / "r.npz"
    mem = ReplayMemory(10, DT, seed=0)
    mem.save(path)
    assert len(ReplayMemory.load(path)) == 0
    mem.add(records(0, 3), np.arange(3.0))
    mem.save(path)  # replaces the previous snapshot
    back = ReplayMemory.load(path)
    assert len(back) == 3 and back.add(records(3, 1)).tolist() == [3]
    np.testing.assert_array_equal(back._records["action"][:4], [0, 1, 2, 3])


def test_load_refuses_missing_and_corrupt_files(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        ReplayMemory.load(missing)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="garbage.npz"):
        ReplayMemory.load(garbage)
    mem = ReplayMemory(10, DT, seed=0)
    mem.add(records(0, 5), np.ones(5))
    good = tmp_path / "good.npz"
    mem.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        ReplayMemory.load(truncated)
    partial = tmp_path / "partial.npz"
    np.savez(partial, records=np.zeros(5, DT))
    with pytest.raises(ValueError, match="partial.npz"):
        ReplayMemory.load(partial)
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    bad_prio = tmp_path / "bad_prio.npz"
    np.savez(bad_prio, **{**arrays, "priorities": np.full(5, np.nan)})
    with pytest.raises(ValueError, match="bad_prio.npz"):
        ReplayMemory.load(bad_prio)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{**arrays, "vidx": np.array([object()] * 5, dtype=object)})
    with pytest.raises(ValueError, match="pickled.npz"):
        ReplayMemory.load(pickled)


class Model:
    """The memory's bookkeeping one record at a time: what the vectorized code must match."""

    def __init__(self, capacity: int, alpha: float, eps: float):
        self.capacity, self.alpha, self.eps = capacity, alpha, eps
        self.slots: dict[int, tuple[int, float]] = {}  # slot -> (vidx, priority)
        self.next, self.max = 0, 1.0

    def prio(self, td: float) -> float:
        return (abs(td) + self.eps) ** self.alpha

    def add(self, n: int, td) -> None:
        for i in range(n):
            p = self.max if td is None else self.prio(td[i])
            if td is not None:
                self.max = max(self.max, p)
            self.slots[self.next % self.capacity] = (self.next, p)
            self.next += 1

    def update(self, vidx, td) -> None:
        for v, t in zip(vidx, td, strict=True):
            slot = v % self.capacity
            if slot in self.slots and self.slots[slot][0] == v:
                p = self.prio(t)
                self.slots[slot] = (v, p)
                self.max = max(self.max, p)


@st.composite
def memory_programs(draw):
    capacity = draw(st.sampled_from([1, 3, 8, 20, 64]))
    ops = []
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["add", "add", "update", "sample"]))
        n = draw(st.integers(1, 2 * capacity + 3))
        tds = draw(st.lists(st.floats(-50, 50), min_size=n, max_size=n))
        ops.append((kind, n, tds if draw(st.booleans()) else None))
    return capacity, ops, draw(st.integers(0, 2**16))


@settings(max_examples=150, deadline=None)
@given(memory_programs())
def test_memory_matches_a_one_at_a_time_model(program):
    capacity, ops, seed = program
    mem, model = ReplayMemory(capacity, DT, seed=seed), Model(capacity, 0.6, 1e-3)
    rng = np.random.default_rng(seed)
    for kind, n, tds in ops:
        if kind == "add":
            got = mem.add(records(model.next, n), None if tds is None else np.array(tds))
            np.testing.assert_array_equal(got, np.arange(model.next, model.next + n))
            model.add(n, tds)
        elif kind == "update" and model.next:
            vidx = rng.integers(max(0, model.next - 2 * capacity), model.next, n)  # some stale
            td = np.array(tds) if tds is not None else rng.standard_normal(n)
            mem.update_priorities(vidx, td)
            model.update(vidx.tolist(), td.tolist())
        elif kind == "sample" and model.next:
            s = mem.sample(n, 0.5)
            live = {v for v, _ in model.slots.values()}
            assert set(s.indices.tolist()) <= live
            np.testing.assert_array_equal(s.records["action"], s.indices)
            assert (s.weights > 0).all() and (s.weights <= 1).all()
        assert len(mem) == len(model.slots) and mem.inserted == model.next
        expect = np.array([model.slots[i][1] for i in range(len(model.slots))])
        np.testing.assert_allclose(mem.priorities(), expect, rtol=1e-12)
        assert mem.max_priority == pytest.approx(model.max, rel=1e-12)
        np.testing.assert_array_equal(mem._vidx[: len(mem)],
                                      [model.slots[i][0] for i in range(len(model.slots))])


def test_stats_when_all_priorities_are_equal():
    mem = ReplayMemory(10, DT, seed=0)
    mem.add(records(0, 7))  # all at the running max, 1.0
    st = mem.stats(bins=4)
    assert st.histogram == (7, 0, 0, 0) and st.max_priority == 1.0 and st.mean_priority == 1.0
    assert st.bin_edges[0] == 1.0 and list(st.bin_edges) == sorted(set(st.bin_edges))
