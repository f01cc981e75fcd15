"""Replay memory throughput: capacity 2^20 CartPole records, one core, after filling it.

Every figure is transitions per second, the median of several timed windows. What is timed is
what the replay process does: `sample` is the real stratified sampling with the record gather and
the importance weights; `update` and `sample+update` feed fresh random TD errors on every call
(drawing them is inside the timing), so no node is ever left unchanged by a repeating pattern;
`insert` adds a batch with its own fresh TD errors. NumPy runs these ops on one thread whatever
OMP_NUM_THREADS says: they are element-wise and indexing, no BLAS.

    python -m bench.replay_bench [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable, Iterator

import numpy as np

from d3q_core.algo.memory import ReplayMemory
from d3q_core.algo.transitions import transition_dtype

CAPACITY = 2**20
BATCHES = (256, 1024)
TARGET = ("sample+update", 256, 2_000_000)  # op, batch, transitions per second


def _records(n: int, rng: np.random.Generator) -> np.ndarray:
    rec = np.zeros(n, transition_dtype(4))
    rec["obs"] = rng.standard_normal((n, 4))
    rec["next_obs"] = rng.standard_normal((n, 4))
    rec["action"] = rng.integers(0, 2, n)
    rec["reward"] = 1.0
    rec["discount"] = 0.99**3
    return rec


def filled_memory(seed: int = 0) -> ReplayMemory:
    """A full memory whose priorities come from random TD errors, as after a long run."""
    rng = np.random.default_rng(seed)
    mem = ReplayMemory(CAPACITY, transition_dtype(4), alpha=0.6, eps=1e-3, seed=seed)
    chunk = 1 << 16
    for _ in range(CAPACITY // chunk):
        mem.add(_records(chunk, rng), rng.standard_normal(chunk))
    return mem


def _rate(step: Callable[[], None], batch: int, repeats: int, window: float) -> float:
    """Median transitions per second over `repeats` windows of about `window` seconds."""
    step()  # warm the scratch buffers for this batch size
    rates = []
    for _ in range(repeats):
        calls = 0
        t0 = time.perf_counter()
        deadline = t0 + window
        while True:
            for _ in range(8):
                step()
            calls += 8
            now = time.perf_counter()
            if now >= deadline:
                break
        rates.append(calls * batch / (now - t0))
    return statistics.median(rates)


def run(quick: bool = False) -> list[dict]:
    """Measure every op at every batch size; prints a table and returns its rows."""
    repeats, window = (3, 0.15) if quick else (9, 0.4)
    mem = filled_memory()
    rng = np.random.default_rng(1)
    beta = 0.4
    results: list[dict] = []
    print(f"{'op':<15}{'batch':>7}{'transitions/s':>16}{'us/call':>10}")

    def record(op: str, batch: int, rate: float) -> None:
        results.append({"op": op, "batch": batch, "transitions_per_s": rate})
        print(f"{op:<15}{batch:>7}{rate:>16,.0f}{batch / rate * 1e6:>10.1f}", flush=True)

    for batch in BATCHES:
        def sample(batch: int = batch) -> None:
            mem.sample(batch, beta)

        record("sample", batch, _rate(sample, batch, repeats, window))

        # indices from real samples, cycled; the TD errors are new on every call
        pool = itertools.cycle([mem.sample(batch, beta).indices for _ in range(64)])

        def update(batch: int = batch, pool: Iterator[np.ndarray] = pool) -> None:
            mem.update_priorities(next(pool), rng.standard_normal(batch))

        record("update", batch, _rate(update, batch, repeats, window))

        def sample_update(batch: int = batch) -> None:
            s = mem.sample(batch, beta)
            mem.update_priorities(s.indices, rng.standard_normal(batch))

        record("sample+update", batch, _rate(sample_update, batch, repeats, window))

    for batch in BATCHES:
        fresh = _records(batch, rng)

        def insert(batch: int = batch, fresh: np.ndarray = fresh) -> None:
            mem.add(fresh, rng.standard_normal(batch))

        record("insert", batch, _rate(insert, batch, repeats, window))

    op, batch, target = TARGET
    got = next(r["transitions_per_s"] for r in results if (r["op"], r["batch"]) == (op, batch))
    verdict = "met" if got >= target else "MISSED"
    print(f"target: {op} at batch {batch} >= {target:,}/s: {got:,.0f}/s, {verdict}")
    return results


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.replay_bench")
    p.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    run(quick=p.parse_args().quick)


if __name__ == "__main__":
    main()
