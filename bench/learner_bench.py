"""Isolated learner throughput on synthetic CartPole batches: one device, and two logical CPU
devices under MirroredStrategy (each in a fresh interpreter: devices are fixed at TF start)."""

from __future__ import annotations

import os
import subprocess
import sys

from d3q_core.backends.local.process import SINGLE_THREADED_BLAS
from d3q_core.roles.learner import TF_ENVIRONMENT

CODE = """
import time
from d3q_core.config import build_config
from d3q_core.algo.devices import configure_threads, make_strategy
configure_threads({threads})
from d3q_core.algo.trainer import Trainer
from d3q_core.algo.qnet import QNetSpec
from tests.learner_worker import records_batch
cfg = build_config(None, ["learner.batch_size={per_replica}"])
spec = QNetSpec(4, 2, tuple(cfg.learner.hidden), cfg.learner.dueling)
strategy, names = make_strategy("{devices}")
t = Trainer(spec, cfg.learner, strategy)
b = records_batch(t)  # the call the pipeline's learner makes
for _ in range(50): t.train_records(*b)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < {seconds}:
    t.train_records(*b); n += 1
dt = time.perf_counter() - t0
print(t.replicas, t.global_batch, n * t.steps_per_call / dt, n * t.call_batch / dt)
"""


def measure(devices: str, per_replica: int, threads: int, seconds: float) -> dict:
    """One case in a fresh interpreter, with the BLAS and TensorFlow settings the learner
    process has; raises RuntimeError with the child's last error line if it failed."""
    return run_code(CODE.format(devices=devices, per_replica=per_replica, threads=threads,
                                seconds=seconds))


def run_code(code: str, timeout: float = 300) -> dict:
    """`code` in a fresh interpreter with the learner process's settings; its last line
    printed is `replicas global_batch steps/s samples/s`."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, env={**dict.fromkeys(SINGLE_THREADED_BLAS, "1"),
                                               **TF_ENVIRONMENT, **os.environ})
    if out.returncode != 0:
        raise RuntimeError(" ".join(out.stderr.strip().splitlines()[-1:]))
    replicas, g, steps, samples = out.stdout.split()[-4:]
    return {"replicas": int(replicas), "global_batch": int(g), "steps_per_s": float(steps),
            "samples_per_s": float(samples)}


CASES = [  # (label, devices, per-replica batch, threads)
    ("1 device (cpu), batch 128", "cpu", 128, 1),
    ("1 device (cpu, 2 threads), batch 128", "cpu", 128, 2),
    ("2 logical CPU devices, 2 x 64", "cpu:2", 64, 2),
    ("2 logical CPU devices, 2 x 128", "cpu:2", 128, 2),
]


def run(quick: bool = False) -> list[dict]:
    rows = []
    for label, devices, per_replica, threads in CASES:
        try:
            row = {"case": label,
                   **measure(devices, per_replica, threads, 2.0 if quick else 5.0)}
        except RuntimeError as exc:
            print(f"{label}: failed: {exc}")
            continue
        rows.append(row)
        print(f"{label:40s} {row['steps_per_s']:8,.0f} steps/s {row['samples_per_s']:10,.0f} "
              "samples/s", flush=True)
    return rows


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
