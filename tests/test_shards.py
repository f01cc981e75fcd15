"""A sharded replay (replay.shards, Ray backend): shards chosen in proportion to their
priority totals, importance weights against the whole memory, stats taken together."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.algo.memory import ReplayMemory
from d3q_core.algo.transitions import transition_dtype
from d3q_core.backends.ray.data import choose_shard
from d3q_core.config import ConfigError, build_config
from d3q_core.snapshot import ReplayStats, combine_replay

DTYPE = transition_dtype(2)
ALPHA, EPS, BETA = 0.6, 1e-3, 0.4


def _memory(tds: np.ndarray, seed: int) -> ReplayMemory:
    """Each record's reward is the |TD| it was stored with, so a test can read it back."""
    m = ReplayMemory(1024, DTYPE, ALPHA, EPS, seed=seed)
    records = np.zeros(len(tds), DTYPE)
    records["reward"] = tds
    m.add(records, tds)
    return m


def test_shards_are_chosen_in_proportion_to_their_totals():
    rng = np.random.default_rng(0)
    totals = {0: (1.0, 0.1), 1: (3.0, 0.2), 2: (6.0, 0.05)}
    picks = np.array([choose_shard([0, 1, 2], totals, rng) for _ in range(20_000)])
    freq = np.bincount(picks, minlength=3) / len(picks)
    assert freq == pytest.approx([0.1, 0.3, 0.6], abs=0.015)
    # among those with a batch waiting only; one not reported yet counts as the mean
    assert {choose_shard([1], totals, rng) for _ in range(50)} == {1}
    picks = [choose_shard([0, 7], totals, rng) for _ in range(4000)]
    assert np.mean(np.array(picks) == 7) == pytest.approx(0.5, abs=0.03)


def test_a_shards_weights_with_the_global_smallest_priority_are_the_whole_memorys():
    rng = np.random.default_rng(1)
    tds_a, tds_b = rng.uniform(0.5, 3.0, 300), rng.uniform(0.01, 2.0, 300)
    a, b = _memory(tds_a, 2), _memory(tds_b, 3)
    whole = _memory(np.concatenate([tds_a, tds_b]), 4)
    global_min = min(a.total_and_min()[1], b.total_and_min()[1])
    assert whole.total_and_min()[1] == pytest.approx(global_min)
    assert a.total_and_min()[0] + b.total_and_min()[0] == pytest.approx(
        whole.total_and_min()[0])

    def expected(batch) -> np.ndarray:  # (p_min / p_i)^beta, p = (|td| + eps)^alpha
        p = (batch.records["reward"].astype(np.float64) + EPS) ** ALPHA
        return (global_min / p) ** BETA

    shard = a.sample(256, BETA, p_min=global_min)
    assert shard.weights == pytest.approx(expected(shard), rel=1e-5)
    assert shard.weights.max() <= 1.0
    alone = a.sample(256, BETA)  # a memory on its own: its own smallest priority
    assert alone.weights.max() == pytest.approx(1.0, abs=0.05)
    together = whole.sample(256, BETA)
    assert together.weights == pytest.approx(expected(together), rel=1e-5)


def test_shard_stats_are_shown_as_one_memory():
    edges = (0.1, 1.0, 10.0)
    one = ReplayStats(size=100, capacity=500, insert_rate=10.0, sample_rate=40.0, inserted=100,
                      sampled=400, total_priority=50.0, max_priority=3.0, mean_priority=0.5,
                      histogram=(60, 40), bin_edges=edges, batches_in_flight=2,
                      in_flight_limit=8)
    two = ReplayStats(size=300, capacity=500, insert_rate=30.0, sample_rate=20.0, inserted=300,
                      sampled=200, total_priority=150.0, max_priority=5.0, mean_priority=0.5,
                      histogram=(100, 200), bin_edges=edges, waiting_insert=True,
                      batches_in_flight=1, in_flight_limit=8)
    both = combine_replay([one, two])
    assert (both.size, both.capacity, both.inserted, both.sampled) == (400, 1000, 400, 600)
    assert (both.insert_rate, both.sample_rate, both.total_priority) == (40.0, 60.0, 200.0)
    assert both.max_priority == 5.0 and both.mean_priority == pytest.approx(0.5)
    assert both.histogram == (160, 240) and both.waiting_insert
    assert (both.batches_in_flight, both.in_flight_limit) == (3, 16)
    assert combine_replay([one]) is one


@pytest.mark.parametrize("sets, fragment", [
    (["replay.shards=2"], "needs cluster.backend = 'ray'"),
    (["replay.shards=9", "cluster.backend=ray", "replay.capacity=8", "replay.min_size=4"],
     "must be <= replay.capacity"),
])
def test_sharding_settings_are_checked(sets, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build_config(None, sets)


def test_each_shard_is_restored_from_its_own_snapshot(tmp_path):
    from d3q_core.algo.qnet import QNetSpec
    from d3q_core.run.plan import RolePlan
    from d3q_core.run.resources import replay_snapshot_paths

    cfg = build_config(None, ["replay.shards=3", "cluster.backend=ray"])
    paths = replay_snapshot_paths(tmp_path, 3)
    plan = RolePlan(cfg, QNetSpec(4, 2, (8,), True), 500.0, 3, tmp_path, 1,
                    replay_restore=paths)
    restored = [r.make.args[3] for r in plan.replays()]  # Replay(cfg, spec, seed, restore, ...)
    assert restored == paths
    assert [r.make.args[4] for r in plan.replays()] == [0, 1, 2]  # the shard each is
    fresh = RolePlan(cfg, QNetSpec(4, 2, (8,), True), 500.0, 3, tmp_path, 1)
    assert [r.make.args[3] for r in fresh.replays()] == [None] * 3
