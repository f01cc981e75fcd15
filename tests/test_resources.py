"""Checks before anything starts: the replay fits in memory, a resumed replay snapshot is the
one the settings describe."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.algo.framememory import FrameLayout, FrameMemory
from d3q_core.algo.memory import ReplayMemory
from d3q_core.algo.qnet import QNetSpec
from d3q_core.algo.transitions import transition_dtype
from d3q_core.config import ConfigError, build_config
from d3q_core.run.resources import (
    check_replay_fits,
    check_replay_snapshot,
    replay_snapshot_paths,
)

SPEC = QNetSpec(4, 2, (8,), True)


def test_a_replay_that_does_not_fit_names_the_key_and_both_sizes():
    cfg = build_config(None, ["replay.capacity=10000000"])
    need = check_replay_fits(cfg, SPEC, available=2**40)
    assert need == ReplayMemory.bytes_needed(10_000_000, transition_dtype(4))
    with pytest.raises(ConfigError, match=r"replay.capacity = 10,000,000: the replay memory "
                                          r"needs 725 MiB, 512 MiB of memory available"):
        check_replay_fits(cfg, SPEC, available=512 * 2**20)


def test_a_snapshot_with_other_settings_is_refused_naming_what_differs(tmp_path):
    path = tmp_path / "replay.npz"
    mem = ReplayMemory(1000, transition_dtype(4), alpha=0.6, seed=0)
    mem.add(np.zeros(10, transition_dtype(4)))
    mem.save(path)
    check_replay_snapshot(path, build_config(None, ["replay.capacity=1000"]))
    with pytest.raises(ConfigError, match=r"capacity 1000 \(config.toml: 2000\), alpha 0.6 "
                                          r"\(config.toml: 0.5\); refusing"):
        check_replay_snapshot(path, build_config(None, ["replay.capacity=2000",
                                                        "replay.alpha=0.5"]))
    path.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="unreadable replay snapshot"):
        check_replay_snapshot(path, build_config(None, ["replay.capacity=1000"]))


ATARI = FrameLayout((84, 84), 4)
NATURE = QNetSpec((4, 84, 84), 6, (512,), True, conv=((32, 8, 4), (64, 4, 2), (64, 3, 1)),
                  channels_first=True, obs_scale=1 / 255)


def test_a_frame_memory_is_sized_by_frames_and_each_stream_must_have_room():
    cfg = build_config(None, ["env.id=ALE/Pong-v5", "replay.capacity=1000000"])
    need = check_replay_fits(cfg, NATURE, ATARI, n_simulators=2, available=2**40)
    assert need == FrameMemory.bytes_needed(1_000_000, ATARI, 32) < 8 * 10**9  # < 8 KB each
    small = build_config(None, ["env.id=ALE/Pong-v5", "replay.capacity=2000",
                                "replay.min_size=100"])
    with pytest.raises(ConfigError, match=r"replay.capacity = 2,000: 64 env streams leave 32 "
                                          r"frames each, fewer than the 44"):
        check_replay_fits(small, NATURE, ATARI, n_simulators=4, available=2**40)


def test_a_frame_snapshot_must_have_a_stream_for_every_env_copy(tmp_path):
    path = tmp_path / "replay.npz"
    FrameMemory(4000, ATARI, 16, seed=0).save(path)
    cfg = build_config(None, ["replay.capacity=4000"])
    check_replay_snapshot(path, cfg, ATARI, n_simulators=1)
    with pytest.raises(ConfigError, match=r"16 env streams \(this run's simulators have 32"):
        check_replay_snapshot(path, cfg, ATARI, n_simulators=2)
    with pytest.raises(ConfigError, match=r"frames \(this env has flat observations\)"):
        check_replay_snapshot(path, cfg)


def test_each_shard_has_its_snapshot_and_another_number_of_shards_is_refused(tmp_path):
    paths = replay_snapshot_paths(tmp_path, 3)
    assert [p.name for p in paths] == ["replay.npz", "replay-1.npz", "replay-2.npz"]
    sharded = build_config(None, ["replay.capacity=3000", "replay.shards=3",
                                  "cluster.backend=ray"])
    ReplayMemory(1000, transition_dtype(4), seed=0).save(paths[1])  # a shard's share
    check_replay_snapshot(paths[1], sharded, shard=1)
    with pytest.raises(ConfigError, match=r"capacity 1000 \(config.toml: 3000\)"):
        check_replay_snapshot(paths[1], build_config(None, ["replay.capacity=3000"]))
    ReplayMemory(3000, transition_dtype(4), seed=0).save(paths[0])  # of one memory
    with pytest.raises(ConfigError, match=r"capacity 3000 \(replay.capacity over 3 shards: "
                                          r"1000\)"):
        check_replay_snapshot(paths[0], sharded)
    # a frame shard's streams are those of the simulators that feed it (i mod shards)
    frames = build_config(None, ["replay.capacity=8000", "replay.shards=2",
                                 "cluster.backend=ray"])
    FrameMemory(4000, ATARI, 16, seed=0).save(paths[1])
    check_replay_snapshot(paths[1], frames, ATARI, n_simulators=3, shard=1)
    with pytest.raises(ConfigError, match=r"16 env streams \(this run's simulators have 32"):
        check_replay_snapshot(paths[1], frames, ATARI, n_simulators=3, shard=0)
