"""What a run needs before anything starts: memory for the replay, a replay snapshot that
matches the settings. Each refusal is one ConfigError line naming the key or the file."""

from __future__ import annotations

from pathlib import Path

import psutil

from d3q_core.algo.frameingest import streams_needed
from d3q_core.algo.framememory import FrameLayout, FrameMemory
from d3q_core.algo.memory import ReplayMemory
from d3q_core.algo.qnet import QNetSpec
from d3q_core.algo.transitions import record_dtype
from d3q_core.config import Config, ConfigError

# the replay may take at most this share of the memory available now: the learner, the
# simulators and the page cache need the rest
REPLAY_SHARE = 0.8


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def replay_bytes(config: Config, spec: QNetSpec, layout: FrameLayout | None = None,
                 n_simulators: int = 1) -> int:
    """What the replay memory (every shard) will take: a frame memory for a pixel env."""
    r = config.replay
    if layout is None:
        return ReplayMemory.bytes_needed(r.capacity, record_dtype(spec))
    per_shard, k = -(-r.capacity // r.shards), config.simulators.envs_per_simulator
    return sum(FrameMemory.bytes_needed(per_shard, layout,
                                        streams_needed(n_simulators, k, r.shards, shard))
               for shard in range(r.shards))


def check_frame_rings(config: Config, layout: FrameLayout, n_simulators: int) -> None:
    """Each env stream's ring must hold a stack, an n-step window and a batch of steps with
    room to spare, or every transition would be dropped before it is stored (the run would
    wait for a replay that never fills)."""
    r, s = config.replay, config.simulators
    streams = streams_needed(n_simulators, s.envs_per_simulator, r.shards)
    per_shard = -(-r.capacity // r.shards)
    ring = -(-per_shard // streams)  # frames per stream, as FrameMemory keeps them
    least = 4 * (layout.stack + config.algorithm.n_step + s.steps_per_batch)
    if ring < least:
        raise ConfigError(f"replay.capacity = {r.capacity:,}: {streams} env streams leave "
                          f"{ring} frames each, fewer than the {least} a stream needs (a stack, "
                          "an n-step window and a batch, with room); raise replay.capacity or "
                          "lower simulators.envs_per_simulator")


def check_replay_fits(config: Config, spec: QNetSpec, layout: FrameLayout | None = None,
                      n_simulators: int = 1, available: int | None = None) -> int:
    """The replay memory's bytes; ConfigError if it cannot fit in this machine's memory."""
    capacity = config.replay.capacity
    if layout is not None:
        check_frame_rings(config, layout, n_simulators)
    needed = replay_bytes(config, spec, layout, n_simulators)
    free = psutil.virtual_memory().available if available is None else available
    if needed > REPLAY_SHARE * free:
        raise ConfigError(f"replay.capacity = {capacity:,}: the replay memory needs "
                          f"{_gib(needed)}, {_gib(free)} of memory available "
                          f"(at most {REPLAY_SHARE:.0%} of it may go to the replay)")
    return needed


def replay_snapshot_paths(checkpoints: Path, shards: int) -> list[Path]:
    """Where each replay shard saves its memory: replay.npz, then replay-1.npz, ..."""
    return [checkpoints / ("replay.npz" if i == 0 else f"replay-{i}.npz")
            for i in range(shards)]


def check_replay_snapshot(path: Path, config: Config, layout: FrameLayout | None = None,
                          n_simulators: int = 1, shard: int = 0) -> None:
    """A resumed replay memory (shard) must be the one these settings describe: its
    capacity and alpha are refused, not silently taken from the snapshot (a shard holds its
    share of replay.capacity, so a snapshot of another number of shards is refused too); a
    frame memory must hold these frames and a stream for every env copy it is fed."""
    try:
        meta = ReplayMemory.read_meta(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{path}: unreadable replay snapshot ({exc.__class__.__name__}); "
                          "move it aside to resume without the replay memory") from None
    r = config.replay
    capacity = -(-r.capacity // r.shards)
    differs = [f"{key} {meta.get(key)!r} ({what}: {want!r})"
               for key, want, what in (
                   ("capacity", capacity, "config.toml" if r.shards == 1 else
                    f"replay.capacity over {r.shards} shards"),
                   ("alpha", r.alpha, "config.toml"))
               if meta.get(key) != want]
    if layout is not None:
        streams = streams_needed(n_simulators, config.simulators.envs_per_simulator, r.shards,
                                 shard)
        if meta.get("layout") != layout.to_dict():
            differs.append(f"frames {meta.get('layout')!r} (this env: {layout.to_dict()!r})")
        if int(meta.get("streams", 0)) < streams:
            differs.append(f"{meta.get('streams')} env streams (this run's simulators have "
                           f"{streams} env copies)")
    elif "layout" in meta:
        differs.append("frames (this env has flat observations)")
    if differs:
        raise ConfigError(f"{path}: the replay snapshot has {', '.join(differs)}; refusing to "
                          "resume with it (move it aside to resume without the replay memory)")
