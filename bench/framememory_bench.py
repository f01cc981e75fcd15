"""FrameMemory size and throughput: Atari frames (84x84, stacks of 4), 32 streams, one core.

What is timed is what the replay process does with a full memory: `sample+update` draws 256
transitions with their stacks rebuilt into fresh records, then feeds back fresh random TD
errors (drawing them is inside the timing); `insert` is one simulator message's worth, 32
streams x 4 steps: add_frames (overwriting the oldest frames, which kills the transitions that
needed them) then add of the 128 transitions those steps completed. `rebuild` rows time only
the stack rebuild of 256 sampled slots: the numba kernel FrameMemory uses against NumPy fancy
indexing into a buffer and then into the record fields. Each figure is the median of several
timed windows. `snapshot` rows: the full Atari memory saved (fsync included) and loaded back,
once, in a temporary folder under the current directory (the disk a run writes to).

    python -m bench.framememory_bench [--quick] [--capacity N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from d3q_core.algo.framememory import FrameLayout, FrameMemory, _kernel

ATARI = FrameLayout((84, 84), 4)
MINATAR = FrameLayout((10, 10, 4), 1)
STREAMS = 32
STEPS = 4  # per insert call
N_STEP = 3
BATCH = 256
TARGETS = {"bytes/transition": 8192, "sample+update": 50_000}


class Feeder:
    """Simulator-like traffic: every stream steps together through episodes of random length,
    an n-step transition from each frame once its n-th successor exists. The random parts are
    drawn up front and cycled, so what is timed is the memory."""

    def __init__(self, mem: FrameMemory, seed: int = 0, horizon: int = 1 << 14):
        self.mem, rng = mem, np.random.default_rng(seed)
        k, shape = mem.streams, mem.layout.frame_shape
        self.pool = rng.integers(0, 256, (64, STEPS, k, *shape), np.uint8)
        epos = np.zeros((horizon, k), np.int64)  # episodes of 100..2000 frames, each stream
        for s in range(k):
            t = 0
            while t < horizon:
                n = int(rng.integers(100, 2000))
                epos[t : t + n, s] = np.arange(min(n, horizon - t))
                t += n
        self.epos = np.minimum(epos, 255).astype(np.uint8).reshape(-1, STEPS, k)
        m = STEPS * k
        self.columns = [(rng.integers(0, 18, m), rng.standard_normal(m),
                         rng.standard_normal(m)) for _ in range(64)]
        self.streams = np.arange(k, dtype=np.int64)
        self.tiled = np.tile(self.streams, STEPS)
        self.lag = (N_STEP + 1 + np.arange(STEPS))[:, None]
        self.discount = np.full(m, 0.99**N_STEP)
        self.calls = 0

    def step(self) -> int:
        """One call of STEPS frames per stream and the transitions they complete."""
        c = self.calls
        self.calls += 1
        head = self.mem.add_frames(self.streams, self.pool[c % 64],
                                   self.epos[c % len(self.epos)]) + STEPS
        obs = (head[None, :] - self.lag).reshape(-1)
        actions, rewards, td = self.columns[c % 64]
        if obs.min() < 0:  # the first calls: not n steps yet
            return 0
        self.mem.add(self.tiled, obs, actions, rewards, self.discount, obs + N_STEP, td)
        return obs.size


def _rate(step: Callable[[], int], repeats: int, window: float) -> float:
    """Median of items per second (step returns how many it handled) over timed windows."""
    step()
    rates = []
    for _ in range(repeats):
        items = 0
        t0 = time.perf_counter()
        while (now := time.perf_counter()) < t0 + window:
            items += step()
        rates.append(items / (now - t0))
    return statistics.median(rates)


def numpy_rebuild(mem: FrameMemory, slots: np.ndarray) -> np.ndarray:
    """The alternative to the kernel: frame slots by array arithmetic, one take into a buffer,
    then the buffer into the record fields."""
    ring, st = mem.ring, mem.layout.stack
    r = slots % ring
    base = slots - r
    both = np.stack([r, (r + mem._k.take(slots)) % ring], 1)  # (n, 2) ring offsets
    back = np.minimum(np.arange(st - 1, -1, -1), mem._epos.take(base[:, None] + both)[..., None])
    src = base[:, None, None] + (both[..., None] - back) % ring
    buf = mem._frames.take(src.reshape(-1), axis=0).reshape(slots.size, 2, *mem.layout.obs_shape)
    records = np.empty(slots.size, mem.dtype)
    records["obs"], records["next_obs"] = buf[:, 0], buf[:, 1]
    return records


def kernel_rebuild(mem: FrameMemory, slots: np.ndarray) -> np.ndarray:
    records = np.empty(slots.size, mem.dtype)
    _kernel()(mem._frames, mem._epos, mem._k, slots, mem.ring, mem.layout.stack,
              records.view(np.uint8).reshape(slots.size, -1), mem._obs_off, mem._next_off)
    return records


def measure(layout: FrameLayout, capacity: int, repeats: int, window: float) -> list[dict]:
    mem = FrameMemory(capacity, layout, STREAMS, seed=0)
    feeder = Feeder(mem)
    t0 = time.perf_counter()
    while feeder.calls * STEPS < mem.ring + 2 * STEPS:  # full, and already overwriting
        feeder.step()
    fill_s = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    name = "atari" if layout.stack > 1 else "minatar"
    rows = [{"layout": name, "op": "bytes/transition", "value": mem.nbytes / capacity,
             "note": f"{mem.nbytes / 2**30:.2f} GiB at {capacity:,}; filled in {fill_s:.1f} s"}]

    def sample_update() -> int:
        b = mem.sample(BATCH, 0.4)
        mem.update_priorities(b.indices, rng.standard_normal(BATCH))
        return BATCH

    def sample() -> int:
        mem.sample(BATCH, 0.4)
        return BATCH

    rows.append({"layout": name, "op": "sample+update", "value":
                 _rate(sample_update, repeats, window), "note": f"batch {BATCH}, transitions/s"})
    rows.append({"layout": name, "op": "sample", "value": _rate(sample, repeats, window),
                 "note": f"batch {BATCH}, transitions/s"})
    for label, rebuild in (("rebuild numba", kernel_rebuild), ("rebuild numpy", numpy_rebuild)):
        def run(rebuild: Callable = rebuild) -> int:
            rebuild(mem, rng.integers(0, mem.streams * mem.ring, BATCH))
            return BATCH

        rows.append({"layout": name, "op": label, "value": _rate(run, repeats, window),
                     "note": "stacks only, transitions/s"})
    slots = np.flatnonzero(mem._vidx >= 0)[:BATCH]
    a, b = kernel_rebuild(mem, slots), numpy_rebuild(mem, slots)
    assert all(np.array_equal(a[f], b[f]) for f in ("obs", "next_obs")), "rebuilds differ"
    rows.append({"layout": name, "op": "insert", "value": _rate(feeder.step, repeats, window),
                 "note": f"{STREAMS} streams x {STEPS} steps a call, transitions/s (= frames/s)"})
    return rows


def snapshot(layout: FrameLayout, capacity: int, where: Path) -> list[dict]:
    """A full memory saved and loaded back: the file's size, the seconds each took (the save
    includes its fsync), and the most memory the load held beyond the memory it made."""
    mem = FrameMemory(capacity, layout, STREAMS, seed=0)
    feeder = Feeder(mem)
    while feeder.calls * STEPS < mem.ring + 2 * STEPS:
        feeder.step()
    path = where / "frames.npz"
    t0 = time.perf_counter()
    mem.save(path)
    save_s = time.perf_counter() - t0
    size = path.stat().st_size
    del mem, feeder
    tracemalloc.start()
    t0 = time.perf_counter()
    back = FrameMemory.load(path)
    load_s = time.perf_counter() - t0
    extra = tracemalloc.get_traced_memory()[1] - back.nbytes
    tracemalloc.stop()
    path.unlink()
    name = "atari" if layout.stack > 1 else "minatar"
    return [{"layout": name, "op": "snapshot bytes", "value": size,
             "note": f"{size / 2**30:.2f} GiB at {capacity:,}, full"},
            {"layout": name, "op": "snapshot save s", "value": save_s,
             "note": f"{size / save_s / 1e6:,.0f} MB/s, fsync included"},
            {"layout": name, "op": "snapshot load s", "value": load_s,
             "note": f"{size / load_s / 1e6:,.0f} MB/s; {max(extra, 0) / 2**20:,.0f} MiB held "
                     "beyond the memory"}]


def run(quick: bool = False, capacity: int = 200_000) -> list[dict]:
    """Measure both layouts; prints a table and returns its rows."""
    repeats, window = (3, 0.3) if quick else (7, 1.0)
    print(f"{'layout':<9}{'op':<18}{'value':>14}  note")
    results: list[dict] = []
    for cap in (200_000, 1_000_000):
        need = FrameMemory.bytes_needed(cap, ATARI, STREAMS)
        results.append({"layout": "atari", "op": "bytes_needed", "value": need / cap,
                        "note": f"{need / 2**30:.2f} GiB at {cap:,} (not allocated)"})
    for layout in (ATARI, MINATAR):
        results += measure(layout, capacity, repeats, window)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as where:  # the disk runs write to
        results += snapshot(ATARI, capacity, Path(where))
    for r in results:
        value = f"{r['value']:>14,.1f}" if r["op"].endswith(" s") else f"{r['value']:>14,.0f}"
        print(f"{r['layout']:<9}{r['op']:<18}{value}  {r['note']}", flush=True)
    for op, target in TARGETS.items():
        got = next(r["value"] for r in results if r["layout"] == "atari" and r["op"] == op)
        ok = got <= target if op.startswith("bytes") else got >= target
        print(f"target: atari {op} {'<=' if op.startswith('bytes') else '>='} {target:,}: "
              f"{got:,.0f}, {'met' if ok else 'MISSED'}")
    return results


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.framememory_bench")
    p.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    p.add_argument("--capacity", type=int, default=200_000, help="transitions (default 200k)")
    args = p.parse_args()
    run(quick=args.quick, capacity=args.capacity)


if __name__ == "__main__":
    main()
