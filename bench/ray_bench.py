"""The Ray backend on this machine: time to goal beside the local backend, env-step scaling
over a 2-node local cluster, and Ray's cost per call against each stage's work.

    python -m bench ray                 # all three (part of `make bench`)
    python -m bench ray --seeds 3

Time to goal alternates local and ray seed by seed (the drift of a shared machine falls on
both alike); each is a fresh `d3q-tui --no-ui` command, `--address local` starting a private
instance, whose start-up (`backend_ready` in result.json's timeline) is reported apart.
"""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.e2e_bench import run_seed

RAY = ["--backend", "ray", "--address", "local"]
LEARNER_NODE, SIM_NODE = "learner_node", "sim_node"


def _startup(run_dir: Path) -> float | None:
    try:
        return json.loads((run_dir / "result.json").read_text())["timeline"]["backend_ready"]
    except (OSError, KeyError, ValueError):
        return None


def time_to_goal(seeds: int) -> dict:
    rows: dict[str, list[dict]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory(prefix="d3q-ray-bench-") as tmp:
        for seed in range(seeds):
            order = ("local", "ray") if seed % 2 == 0 else ("ray", "local")
            for side in order:
                where = Path(tmp) / side
                row = run_seed(seed, where, RAY if side == "ray" else None)
                row["backend_ready"] = _startup(where / f"seed-{seed}")
                rows[side].append(row)
                print(f"  {side:5} seed {seed}: to goal {row.get('seconds_to_goal') or '-'} s "
                      f"(backend ready at {row['backend_ready']} s), confirmed "
                      f"{row.get('confirmed')}", flush=True)
    out = {}
    for side, rs in rows.items():
        times = [r["seconds_to_goal"] for r in rs if r.get("seconds_to_goal") is not None]
        ready = [r["backend_ready"] for r in rs if r.get("backend_ready") is not None]
        out[side] = {"solved": sum(bool(r["solved"]) for r in rs), "seeds": len(rs),
                     "median_seconds_to_goal": statistics.median(times) if times else None,
                     "median_backend_ready": statistics.median(ready) if ready else None,
                     "seconds": times, "rows": rs}
    lm, rm = out["local"]["median_seconds_to_goal"], out["ray"]["median_seconds_to_goal"]
    out["ratio"] = rm / lm if lm and rm else None
    print(f"  medians: local {lm} s, ray {rm} s (x{out['ratio'] and round(out['ratio'], 2)}; "
          f"target <= 1.5); ray's start-up {out['ray']['median_backend_ready']} s, the local "
          f"backend's {out['local']['median_backend_ready']} s")
    return out


def _env_rate(run_dir: Path) -> float | None:
    """Env steps/s into the replay over the run's second half (TensorBoard's env steps)."""
    from tests.test_rundir import read_events

    points = sorted((e.wall_time, v.simple_value) for e in read_events(run_dir / "tb")
                    for v in e.summary.value if v.tag == "simulators/env_steps")
    if len(points) < 4:
        return None
    (t0, s0), (t1, s1) = points[len(points) // 2], points[-1]
    return (s1 - s0) / (t1 - t0) if t1 > t0 else None


def scaling(counts: tuple[int, ...] = (1, 2, 4), seconds: float = 30.0) -> list[dict]:
    """Simulator actors on one node of a 2-node cluster, the learner and replay on the other."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {LEARNER_NODE: 1}, "include_dashboard": False})
    cluster.add_node(num_cpus=1, resources={SIM_NODE: 1})
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="d3q-ray-scaling-") as tmp:
            for n in counts:
                run_dir = Path(tmp) / f"sims-{n}"
                cmd = [sys.executable, "-m", "d3q_tui.cli", "--no-ui", "--backend", "ray",
                       "--address", cluster.address, "--run-dir", str(run_dir),
                       "--set", f"simulators.count={n}", "--set", "stop.goal=100000",
                       "--set", f"stop.max_seconds={seconds}",
                       "--set", f"cluster.simulator_resources={{{SIM_NODE} = 0.01}}",
                       "--set", f"cluster.learner_resources={{{LEARNER_NODE} = 0.01}}"]
                subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
                result = json.loads((run_dir / "result.json").read_text())
                row = {"simulators": n, "env_steps_per_s": _env_rate(run_dir),
                       "learner_samples_per_s": result["learner_samples_per_s"],
                       "nodes": sorted(set(result["nodes"].values()))}
                rows.append(row)
                print(f"  {n} simulator actor(s): {row['env_steps_per_s'] or 0:,.0f} env "
                      f"steps/s into the replay, learner "
                      f"{row['learner_samples_per_s'] or 0:,.0f} samples/s", flush=True)
    finally:
        cluster.shutdown()
    return rows


def _per_call(fn, repeats: int, clock=time.perf_counter) -> float:
    fn()  # warm
    t0 = clock()
    for _ in range(repeats):
        fn()
    return (clock() - t0) / repeats


def overhead(quick: bool = False) -> dict:
    """Ray's cost per call, caller side (what the calling stage pays: serialising and
    submitting) and round trip, against the work each call carries at the defaults."""
    import ray

    from d3q_core.algo.transitions import transition_dtype
    from d3q_core.backends.ray.actor import RoleActor
    from d3q_core.backends.ray.hub import LinkUpdate, RunHub
    from d3q_core.backends.ray.mailbox import ANSWERS
    from d3q_core.roles.messages import Experience

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    try:
        sink = ray.remote(RoleActor).options(max_concurrency=8).remote("bench", None, 0)
        hub = ray.remote(RunHub).options(max_concurrency=8).remote()
        ray.get([sink.where.remote(), hub.ping.remote()])
        dtype = transition_dtype(4)
        # 20 ms of one simulator at ~25k env steps/s: ~500 transitions in batches of 64
        experience = [Experience(0, np.zeros(64, dtype), np.ones(64, np.float32))
                      for _ in range(8)]
        # a call of sample batches as the replay sizes them (3 x 512 CartPole records stay
        # under Ray's inline limit), and the learner's answers to it
        group = [(np.zeros(512, dtype), np.arange(512, dtype=np.int64),
                  np.ones(512, np.float32)) for _ in range(3)]
        answers = [(np.arange(512, dtype=np.int64), np.ones(512, np.float32))
                   for _ in range(3)]
        params = np.zeros(17_539, np.float32)  # the default CartPole network
        n = 100 if quick else 400
        refs: list = []

        def submit(payload):
            return lambda: refs.append(sink.deliver.remote(ANSWERS, payload))

        costs = {
            "experience call, submit": _per_call(submit(experience), n),
            "sample group call, submit": _per_call(submit(group), n),
            "answers call, submit": _per_call(submit(answers), n),
            "hub sync, round trip": _per_call(
                lambda: ray.get(hub.sync.remote(LinkUpdate("simulator"))), n),
            # a sync runs on the link's own thread (link.py): what the role loses is the
            # CPU that thread takes (holding the GIL), not the round trip it waits out
            "hub sync, link thread CPU": _per_call(
                lambda: ray.get(hub.sync.remote(LinkUpdate("simulator"))), n,
                time.thread_time),
            "params put": _per_call(lambda: ray.put(params), n),
            "params put, link thread CPU": _per_call(lambda: ray.put(params), n,
                                                     time.thread_time),
            "sample group call, round trip": _per_call(
                lambda: ray.get(sink.deliver.remote(ANSWERS, group)), n),
        }
        ray.get(refs)
    finally:
        ray.shutdown()
    # the work per second each stage's calls stand for (defaults, CartPole, this machine):
    # a simulator sends every simulators.batch_seconds; at ~85k learner samples/s the replay
    # sends and the learner answers ~55 calls of 3 x 512 a second; each syncs with the hub
    # every SYNC_SECONDS (the learner with one put)
    from d3q_core.backends.ray.link import SYNC_SECONDS
    from d3q_core.config import Config

    groups, sync = 85_000 / 1536, {k: 1 / v for k, v in SYNC_SECONDS.items()}
    per_sync, put = costs["hub sync, link thread CPU"], costs["params put, link thread CPU"]
    share = {
        "simulator": costs["experience call, submit"] / Config().simulators.batch_seconds
        + sync["simulator"] * per_sync,
        "replay": groups * costs["sample group call, submit"] + sync["replay"] * per_sync,
        "learner": groups * costs["answers call, submit"]
        + sync["learner"] * (per_sync + put),
    }
    for name, seconds in costs.items():
        print(f"  {name:32} {seconds * 1e3:6.3f} ms")
    for stage, frac in share.items():
        print(f"  {stage:10} Ray's share of its time: {frac:.1%} (target < 5%)")
    return {"per_call_s": costs, "share": share}


def run(seeds: int = 5, quick: bool = False) -> dict:
    print("-- time to goal, CartPole-v1 defaults: local and ray alternated --")
    ttg = time_to_goal(seeds)
    print("-- env steps/s into the replay over a 2-node local cluster --")
    scale = scaling(seconds=20.0 if quick else 30.0)
    print("-- Ray's cost per call against each stage's work --")
    cost = overhead(quick)
    return {"time_to_goal": ttg, "scaling": scale, "overhead": cost}
