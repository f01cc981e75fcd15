"""FrameMemory: stacks rebuilt from per-stream rings equal the stacks an env wrapper would have
built, transitions live exactly while their frames are in the ring, priorities and weights as
ReplayMemory's, snapshots."""

from __future__ import annotations

import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from d3q_core.algo.framememory import FrameLayout, FrameMemory
from d3q_core.algo.memory import ReplayMemory, SampleBatch
from d3q_core.algo.transitions import transition_dtype

ATARI = FrameLayout((84, 84), 4)
MINATAR = FrameLayout((10, 10, 4), 1)
SMALL = (2, 3)  # test frames: [stream, position lo, position hi, episode, random, random]


def priority(td, alpha=0.6, eps=1e-3):
    return (np.abs(td) + eps) ** alpha


def live_priorities(mem: FrameMemory) -> dict[int, float]:
    """Virtual index -> priority of every live transition (white box: slots and tree)."""
    slots = np.flatnonzero(mem._vidx >= 0)
    return dict(zip(mem._vidx[slots].tolist(), mem._tree.leaves[slots].tolist(), strict=True))


# --- the naive reference ------------------------------------------------------------------


@dataclass
class NaiveStream:
    frames: list[np.ndarray] = field(default_factory=list)
    stacks: list[list[int]] = field(default_factory=list)  # positions of each obs's frames
    window: deque = field(default_factory=deque)


class NaiveMemory:
    """Whole stacks per transition, built as an env wrapper builds them (a deque of the last
    `stack` frames, filled with the first frame at an episode's start); a transition is live
    while every frame of its two stacks would still be in its stream's ring."""

    def __init__(self, capacity: int, stack: int, streams: int, alpha: float, eps: float):
        self.ring = -(-capacity // streams)
        self.stack, self.n_streams, self.alpha, self.eps = stack, streams, alpha, eps
        self.streams = [NaiveStream(window=deque(maxlen=stack)) for _ in range(streams)]
        self.trans: dict[int, dict] = {}
        self.max_priority = 1.0

    def append(self, s: int, frame: np.ndarray, episode_pos: int) -> None:
        st = self.streams[s]
        p = len(st.frames)
        if episode_pos == 0:
            st.window.extend([p] * self.stack)
        else:
            st.window.append(p)
        st.frames.append(frame)
        st.stacks.append(list(st.window))

    def head(self, s: int) -> int:
        return len(self.streams[s].frames)

    def obs(self, s: int, p: int) -> np.ndarray:
        st = self.streams[s]
        frames = np.stack([st.frames[i] for i in st.stacks[p]])
        return frames if self.stack > 1 else frames[0]

    def _present(self, t: dict) -> bool:
        stacks = self.streams[t["s"]].stacks
        return min(stacks[t["p"]] + stacks[t["q"]]) >= max(0, self.head(t["s"]) - self.ring)

    def add(self, rows: list[tuple], td: np.ndarray | None) -> list[int]:
        if td is not None:
            self.max_priority = max(self.max_priority, float(priority(td, self.alpha,
                                                                      self.eps).max()))
        out = []
        for i, (s, p, a, r, d, q) in enumerate(rows):
            t = {"s": s, "p": p, "q": q, "action": a, "reward": r, "discount": d}
            if not self._present(t):
                out.append(-1)
                continue
            t["obs"], t["next_obs"] = self.obs(s, p), self.obs(s, q)
            t["priority"] = (self.max_priority if td is None
                             else float(priority(td[i], self.alpha, self.eps)))
            vidx = p * self.n_streams + s
            self.trans[vidx] = t
            out.append(vidx)
        return out

    def forget_dead(self) -> None:
        self.trans = {v: t for v, t in self.trans.items() if self._present(t)}

    def update(self, indices: np.ndarray, td: np.ndarray) -> None:
        for v, e in zip(indices.tolist(), td.tolist(), strict=True):
            if v in self.trans:
                p = float(priority(e, self.alpha, self.eps))
                self.trans[v]["priority"] = p
                self.max_priority = max(self.max_priority, p)


class Simulator:
    """Streams of episodes and their n-step transitions, as a simulator makes them: a frame a
    step, each non-final frame an obs whose transition is ready n frames later, or at its
    episode's last frame (discount 0)."""

    def __init__(self, streams: int, n: int, gamma: float = 0.9):
        self.n, self.gamma = n, gamma
        self.left = [0] * streams  # frames left in the current episode (0: next one resets)
        self.epos = [0] * streams
        self.episode = [0] * streams
        self.open: list[list[int]] = [[] for _ in range(streams)]
        self.ready: list[tuple] = []

    def frame(self, s: int, p: int, length: int, rng: np.random.Generator,
              skip: bool) -> tuple[np.ndarray, int]:
        """The next frame of stream s (at position p) and its episode position."""
        if self.left[s] == 0:
            self.left[s], self.epos[s] = length, 0
            self.episode[s] += 1
        else:
            self.epos[s] = min(self.epos[s] + 1, 255)
        self.left[s] -= 1
        frame = np.array([s, p % 256, p // 256 % 256, self.episode[s] % 256,
                          *rng.integers(0, 256, 2)], np.uint8).reshape(SMALL)
        final = self.left[s] == 0
        still = []
        for o in self.open[s]:
            if final or p - o == self.n:
                disc = 0.0 if final else self.gamma ** (p - o)
                self.ready.append((s, o, int(rng.integers(0, 6)), float(rng.normal()), disc, p))
            else:
                still.append(o)
        self.open[s] = still
        if not final and not skip:
            self.open[s].append(p)
        return frame, self.epos[s]


def check_same(mem: FrameMemory, naive: NaiveMemory) -> None:
    naive.forget_dead()
    got = live_priorities(mem)
    assert set(got) == set(naive.trans)
    assert len(mem) == len(naive.trans)
    for v, t in naive.trans.items():
        assert got[v] == pytest.approx(t["priority"], rel=1e-12)
    assert mem.max_priority == pytest.approx(naive.max_priority, rel=1e-12)
    assert mem.head(np.arange(naive.n_streams)).tolist() == [
        naive.head(s) for s in range(naive.n_streams)]


def check_sample(mem: FrameMemory, naive: NaiveMemory, batch: SampleBatch, beta: float,
                 p_min: float | None) -> None:
    prios = {v: t["priority"] for v, t in naive.trans.items()}
    lo = min(prios.values()) if p_min is None else min(min(prios.values()), p_min)
    assert batch.records.dtype == mem.dtype
    for rec, v, w in zip(batch.records, batch.indices.tolist(), batch.weights, strict=True):
        assert v in naive.trans, "a dead transition was sampled"
        t = naive.trans[v]
        assert (v % naive.n_streams, v // naive.n_streams) == (t["s"], t["p"])
        np.testing.assert_array_equal(rec["obs"], t["obs"])
        np.testing.assert_array_equal(rec["next_obs"], t["next_obs"])
        assert (rec["action"], rec["reward"], rec["discount"]) == (
            t["action"], np.float32(t["reward"]), np.float32(t["discount"]))
        assert w == pytest.approx((lo / prios[v]) ** beta, rel=1e-6)
        for stack in (rec["obs"], rec["next_obs"]):  # one episode per stack, oldest first
            frames = stack.reshape(-1, *SMALL)
            assert len({int(f[1, 0]) for f in frames}) == 1
            pos = [int(f[0, 1]) + 256 * int(f[0, 2]) for f in frames]
            assert pos == sorted(pos)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_matches_a_naive_memory_that_stores_whole_stacks(data):
    streams = data.draw(st.integers(1, 3), label="streams")
    stack = data.draw(st.sampled_from([1, 2, 4]), label="stack")
    capacity = data.draw(st.integers(streams * stack, streams * (stack + 10)), label="capacity")
    n = data.draw(st.integers(1, 4), label="n")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    rng = np.random.default_rng(seed)
    layout = FrameLayout(SMALL, stack)
    mem = FrameMemory(capacity, layout, streams, alpha=0.6, eps=1e-3, seed=seed)
    naive = NaiveMemory(capacity, stack, streams, 0.6, 1e-3)
    sim = Simulator(streams, n)
    returned: list[int] = []
    for _ in range(data.draw(st.integers(5, 80), label="ops")):
        op = data.draw(st.sampled_from(["step", "step", "add", "update", "sample"]))
        if op == "step":
            chosen = data.draw(st.permutations(range(streams)))
            chosen = np.array(chosen[: data.draw(st.integers(1, streams))], np.int64)
            t = data.draw(st.integers(1, 5))
            frames = np.zeros((t, chosen.size, *SMALL), np.uint8)
            epos = np.zeros((t, chosen.size), np.uint8)
            heads = mem.head(chosen)
            for i in range(t):
                for j, s in enumerate(chosen.tolist()):
                    frames[i, j], epos[i, j] = sim.frame(
                        s, int(heads[j]) + i, int(rng.integers(2, 12)), rng,
                        skip=rng.random() < 0.2)
                    naive.append(s, frames[i, j], int(epos[i, j]))
            before = len(mem)
            assert mem.add_frames(chosen, frames, epos).tolist() == heads.tolist()
            if len(mem) < before:
                event("frames overwritten killed transitions")
            if t > mem.ring:
                event("more frames than a ring holds in one call")
        elif op == "add" and sim.ready:
            take = data.draw(st.integers(1, len(sim.ready)))
            rows, sim.ready = sim.ready[:take], sim.ready[take:]
            rng.shuffle(rows)
            td = rng.normal(size=len(rows)) * 3 if rng.random() < 0.7 else None
            cols = [np.array(c) for c in zip(*rows, strict=True)]
            got = mem.add(*cols, td_errors=td)
            assert got.tolist() == naive.add(rows, td)
            if (got < 0).any():
                event("transitions dropped on add")
            returned.extend(got.tolist())
        elif op == "update" and returned:
            idx = rng.choice(np.array(returned), size=int(rng.integers(1, 8)))
            td = rng.normal(size=idx.size) * 3
            mem.update_priorities(idx, td)
            naive.update(idx, td)
        elif op == "sample":
            check_same(mem, naive)
            if not naive.trans:
                with pytest.raises(ValueError, match="empty"):
                    mem.sample(4, 0.5)
                continue
            beta = float(rng.uniform(0.0, 1.0))
            p_min = None if rng.random() < 0.5 else float(rng.uniform(0.01, 2.0))
            batch = mem.sample(int(rng.integers(1, 9)), beta, p_min)
            check_sample(mem, naive, batch, beta, p_min)
            event("sampled")
        check_same(mem, naive)
    total, lo = mem.total_and_min()
    prios = [t["priority"] for t in naive.trans.values()]
    assert total == pytest.approx(sum(prios))
    assert lo == (min(prios) if prios else np.inf)
    assert mem.stats().size == len(prios) and sum(mem.stats().histogram) == len(prios)


# --- layouts --------------------------------------------------------------------------------


def fill_minatar(mem: FrameMemory, steps: int, rng: np.random.Generator) -> np.ndarray:
    """`steps` random bool frames per stream, one episode, a transition from each frame to
    the next; returns all the frames, (steps, streams, 10, 10, 4)."""
    s = np.arange(mem.streams)
    frames = rng.random((steps, mem.streams, 10, 10, 4)) < 0.2
    epos = np.minimum(np.arange(steps), 255)[:, None].repeat(mem.streams, 1)
    mem.add_frames(s, frames, epos)
    p = np.arange(steps - 1)[:, None].repeat(mem.streams, 1).reshape(-1)
    ss = np.tile(s, steps - 1)
    mem.add(ss, p, p % 3, p * 0.5, np.full(p.size, 0.9), p + 1, rng.normal(size=p.size))
    return frames


def test_minatar_frames_are_the_observations():
    rng = np.random.default_rng(0)
    mem = FrameMemory(64, MINATAR, 4, seed=0)
    assert mem.dtype == transition_dtype((10, 10, 4), np.uint8)
    frames = fill_minatar(mem, 40, rng)  # 40 frames into rings of 16: the first 24 gone
    assert len(mem) == 4 * 15  # obs 24..38 -> next 25..39
    b = mem.sample(64, beta=0.4)
    for rec, v in zip(b.records, b.indices.tolist(), strict=True):
        p, s = divmod(v, 4)
        assert 24 <= p < 39
        np.testing.assert_array_equal(rec["obs"], frames[p, s].view(np.uint8))
        np.testing.assert_array_equal(rec["next_obs"], frames[p + 1, s].view(np.uint8))
        assert rec["action"] == p % 3 and rec["reward"] == p * 0.5


def test_atari_stacks_repeat_the_first_frame_and_cap_the_episode_position():
    mem = FrameMemory(4 * 16, ATARI, 4, seed=0)
    s = np.arange(4)
    frames = np.zeros((300, 4, 84, 84), np.uint8)
    frames[:] = (np.arange(300) % 251)[:, None, None, None]
    frames += np.arange(4, dtype=np.uint8)[None, :, None, None]
    epos = np.minimum(np.arange(300), 255)[:, None].repeat(4, 1)
    epos[290:, 1] = np.arange(10)  # stream 1: an episode starts at 290
    mem.add_frames(s, frames[:150], epos[:150])
    assert mem.add_frames(s, frames[150:], epos[150:]).tolist() == [150] * 4
    p = np.tile(np.arange(286, 298), 4)  # the rings hold 284..299: 286 needs 283
    ss = np.repeat(s, 12)
    idx = mem.add(ss, p, p % 4, p * 1.0, np.ones(p.size), p + 2)
    assert ((idx >= 0) == (p > 286)).all() and len(mem) == 44
    b = mem.sample(256, beta=1.0)
    for rec, v in zip(b.records, b.indices.tolist(), strict=True):
        p, s_ = divmod(v, 4)
        for pos, got in ((p, rec["obs"]), (p + 2, rec["next_obs"])):
            start = 290 if s_ == 1 and pos >= 290 else 0
            want = [max(pos - j, start) for j in (3, 2, 1, 0)]
            np.testing.assert_array_equal(got[:, 0, 0], [(w % 251 + s_) % 256 for w in want])
    assert mem.dropped == 4 and mem.inserted == 44


def test_a_stack_dies_with_its_oldest_frame():
    """The transition at p needs frames p-3..p: it dies when p-3 is overwritten, not later."""
    mem = FrameMemory(8, FrameLayout(SMALL, 4), 1, seed=0)  # ring of 8
    one = np.zeros((1, 1, *SMALL), np.uint8)
    for i in range(10):
        mem.add_frames([0], one, [[i]])
    v = mem.add([0], [5], [0], [0.0], [1.0], [6])  # frames 2..6 of the ring 2..9
    assert v.tolist() == [5] and len(mem) == 1
    mem.add_frames([0], one, [[10]])  # overwrites frame 2
    assert len(mem) == 0 and mem.total_and_min() == (0.0, np.inf)
    mem.update_priorities(v, [5.0])  # dead: ignored
    assert mem.total_and_min()[0] == 0.0
    # after an episode start at 8 the transition at 9 needs only 8 and 9
    mem2 = FrameMemory(8, FrameLayout(SMALL, 4), 1, seed=0)
    for i, e in enumerate([0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6]):
        mem2.add_frames([0], one, [[e]])
        if i == 11:
            assert mem2.add([0], [9], [0], [0.0], [1.0], [10])[0] >= 0
    assert len(mem2) == 1  # ring now 7..14: frames 8..10 are in
    mem2.add_frames([0], one, [[7]])  # 7 goes: the transition never needed it
    assert len(mem2) == 1
    mem2.add_frames([0], one, [[8]])  # 8 goes
    assert len(mem2) == 0


def test_drops_transitions_whose_frames_are_gone_and_refuses_caller_bugs():
    mem = FrameMemory(8, FrameLayout(SMALL, 2), 2, seed=0)  # rings of 4
    frames = np.zeros((6, 2, *SMALL), np.uint8)
    mem.add_frames([0, 1], frames, np.arange(6)[:, None].repeat(2, 1))
    got = mem.add([0, 0, 1], [1, 2, 3], [0, 0, 0], [0, 0, 0], [1, 1, 1], [2, 3, 4])
    assert got.tolist() == [-1, -1, 3 * 2 + 1]  # ring 2..5: obs at 2 needs 1
    assert mem.dropped == 2 and mem.inserted == 1 and len(mem) == 1
    for bad in ([4], [6]):  # next_pos <= obs_pos, next_pos >= head
        with pytest.raises(ValueError):
            mem.add([0], [4], [0], [0.0], [1.0], bad, td_errors=[100.0])
    with pytest.raises(ValueError, match="already"):
        mem.add([1], [3], [0], [0.0], [1.0], [5])
    with pytest.raises(ValueError, match="already"):
        mem.add([0, 0, 0], [4, 1, 4], [0, 0, 0], [0, 0, 0], [1, 1, 1], [5, 2, 5], [9, 9, 9])
    with pytest.raises(ValueError, match="finite"):
        mem.add([0], [4], [0], [0.0], [1.0], [5], td_errors=[np.nan])
    with pytest.raises(ValueError, match="stream"):
        mem.add([2], [4], [0], [0.0], [1.0], [5])
    with pytest.raises(ValueError, match="distinct"):
        mem.add_frames([0, 0], frames[:, :2], np.zeros((6, 2), np.uint8))
    with pytest.raises(TypeError):
        mem.add_frames([0, 1], frames.astype(np.float32), np.zeros((6, 2), np.uint8))
    with pytest.raises(ValueError):
        mem.add_frames([0, 1], frames, np.full((6, 2), 256))
    assert len(mem) == 1 and mem.inserted == 1  # a refused call changes nothing
    assert mem.dropped == 2 and mem.max_priority == 1.0
    mem.update_priorities([-1, 3 * 2 + 1, 99], [1.0, 2.0, np.nan])  # only the live one counts
    assert mem.total_and_min() == pytest.approx((priority(2.0), priority(2.0)))


def test_weights_use_the_given_smallest_priority():
    mem = FrameMemory(16, MINATAR, 1, alpha=1.0, eps=1.0, seed=0)
    mem.add_frames([0], np.zeros((5, 1, 10, 10, 4), bool), np.arange(5)[:, None])
    mem.add(np.zeros(4, int), np.arange(4), np.zeros(4), np.zeros(4), np.ones(4), np.arange(1, 5),
            np.array([0.0, 1.0, 2.0, 3.0]))  # priorities 1..4
    b = mem.sample(200, beta=0.5)
    np.testing.assert_allclose(b.weights, (1.0 / (b.indices + 1.0)) ** 0.5, rtol=1e-6)
    b = mem.sample(200, beta=0.5, p_min=0.25)
    np.testing.assert_allclose(b.weights, (0.25 / (b.indices + 1.0)) ** 0.5, rtol=1e-6)
    st_ = mem.stats(bins=4)
    assert st_.size == 4 and st_.total == 10.0 and st_.max_priority == 4.0
    assert sum(st_.histogram) == 4


def test_capacity_below_streams_times_stack_is_refused():
    with pytest.raises(ValueError, match="stack"):
        FrameMemory(31, FrameLayout(SMALL, 4), 8)
    FrameMemory(32, FrameLayout(SMALL, 4), 8)


def test_record_fields_are_the_transition_records():
    assert FrameMemory(8, ATARI, 2).dtype == transition_dtype((4, 84, 84), np.uint8)
    assert FrameMemory(8, MINATAR, 2).dtype.names == transition_dtype(4).names
    assert FrameLayout.from_dict(ATARI.to_dict()) == ATARI
    assert ATARI.obs_shape == (4, 84, 84) and MINATAR.obs_shape == (10, 10, 4)


def test_atari_bytes_per_transition_under_8_kb():
    mem = FrameMemory(32 * 128, ATARI, 32)
    assert mem.nbytes <= FrameMemory.bytes_needed(32 * 128, ATARI, 32)
    for capacity in (4, 100, 4096, 5000, 70_000, 300_000):  # the tree's shapes change
        small = FrameMemory(capacity, FrameLayout((1,), 1), 3)
        assert small.nbytes <= FrameMemory.bytes_needed(capacity, small.layout, 3)
    assert mem.nbytes / mem.capacity < 8192
    for capacity in (200_000, 1_000_000):
        assert FrameMemory.bytes_needed(capacity, ATARI, 32) / capacity < 8192
    assert FrameMemory.bytes_needed(1_000_000, ATARI, 32) < 8 * 10**9


def test_importing_does_not_load_numba():
    code = ("import sys, d3q_core.algo.framememory as m; "
            "m.FrameMemory.bytes_needed(10, m.FrameLayout((2,), 1), 1); "
            "assert 'numba' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- snapshots ------------------------------------------------------------------------------


def filled(seed: int = 0) -> FrameMemory:
    mem = FrameMemory(48, MINATAR, 3, seed=seed)
    fill_minatar(mem, 30, np.random.default_rng(seed))
    return mem


def test_save_load_round_trip(tmp_path):
    mem = filled()
    mem.sample(8, 0.5)
    path = tmp_path / "frames.npz"
    mem.save(path)
    assert FrameMemory.read_meta(path)["streams"] == 3
    back = FrameMemory.load(path)
    for name in ("capacity", "streams", "layout", "inserted", "dropped", "max_priority"):
        assert getattr(back, name) == getattr(mem, name)
    assert len(back) == len(mem) and back.stats() == mem.stats()
    a, b = mem.sample(32, 0.4), back.sample(32, 0.4)  # the generator goes on where it was
    assert a.records.tobytes() == b.records.tobytes()
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.weights, b.weights)
    c, d = FrameMemory.load(path, seed=7).sample(32, 0.4), FrameMemory.load(path, seed=7).sample(
        32, 0.4)
    assert c.records.tobytes() == d.records.tobytes()
    # and they go on alike: the same frames kill the same transitions
    frames, epos = np.ones((5, 3, 10, 10, 4), np.uint8), np.full((5, 3), 40)
    mem.add_frames(np.arange(3), frames, epos)
    back.add_frames(np.arange(3), frames, epos)
    assert live_priorities(mem) == live_priorities(back)


def test_loading_a_snapshot_reads_the_frames_in_place_not_twice(tmp_path):
    """The frames are nearly all of a snapshot: loading must not hold a second copy."""
    import tracemalloc

    mem = FrameMemory(8_000, ATARI, 4, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(2):
        mem.add_frames(np.arange(4), rng.integers(0, 256, (1000, 4, 84, 84), np.uint8),
                       np.minimum(np.arange(1000), 255)[:, None].repeat(4, 1))
    path = tmp_path / "frames.npz"
    mem.save(path)
    frames = mem._frames.nbytes
    tracemalloc.start()
    try:
        back = FrameMemory.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(back._frames, mem._frames)
    assert frames <= peak < 1.3 * frames, (peak, frames)


def test_corrupt_snapshots_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "frames.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="frames.npz"):
        FrameMemory.load(path)
    filled().save(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="frames.npz"):
        FrameMemory.load(path)
    filled().save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz") as z:
        good = dict(z)

    def nan_at_a_live_slot(a: np.ndarray) -> np.ndarray:
        a[np.argmax(a)] = np.nan
        return a

    for name, change in (("vidx", lambda a: np.where(a == a.max(), 10**6, a)),  # wrong slot
                         ("priorities", nan_at_a_live_slot),
                         ("heads", lambda a: a + 100),  # their frames left the ring
                         ("k", lambda a: a.astype(np.float64)),
                         ("frames", lambda a: a[:-1])):
        bad = {k: v.copy() for k, v in good.items()}
        bad[name] = change(bad[name])
        np.savez(path, **bad)
        with pytest.raises(ValueError, match="frames.npz"):
            FrameMemory.load(path)
    ReplayMemory(4, transition_dtype(2)).save(path)
    with pytest.raises(ValueError, match="not a frame memory"):
        FrameMemory.load(path)
    with pytest.raises(FileNotFoundError):
        FrameMemory.load(tmp_path / "missing.npz")
