"""Pixels: what image observations cost at each stage, and how far training from them gets.

    python -m bench pixels                 # throughput (part of `make bench`)
    python -m bench minatar                # Breakout 30 min, two more games 10 min: curves
    python -m bench atari --minutes 60     # one long Pong run and its curve

Throughput: ale-py's vector env against gymnasium's wrappers (where OpenCV is there to run
them), a simulator's env steps/s against its raw preprocessed vector env (Atari with the
Nature CNN, MinAtar with its small CNN), the learner's samples/s with each CNN on one device
and on two logical CPU devices, the frame memory's bytes per transition and sample rate, and
the peak memory of a run whose memory holds 200k Atari transitions.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from d3q_core.backends.local.process import spawn_context

K = 16  # env copies per simulator, as the defaults have it


def _vector_envs(seconds: float) -> dict:
    """16 copies of Pong with random actions: ale-py's vector env (C++ preprocessing, one
    thread) against gymnasium's AtariPreprocessing + FrameStackObservation over single envs."""
    from d3q_core.envs import make_vector_env

    def rate(env) -> float:
        env.reset(seed=0)
        rng, n, t0 = np.random.default_rng(0), 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            env.step(rng.integers(0, 6, K).astype(np.int64))
            n += K
        env.close()
        return n / (time.perf_counter() - t0)

    out = {"ale_vector_steps_per_s": rate(make_vector_env("ALE/Pong-v5", K, 0))}
    try:
        import gymnasium as gym
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation

        def make():
            env = gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0)
            return FrameStackObservation(AtariPreprocessing(env, noop_max=30), 4)

        out["gym_wrappers_steps_per_s"] = rate(gym.vector.SyncVectorEnv(
            [make] * K, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP))
    except gym.error.DependencyNotInstalled:
        out["gym_wrappers_steps_per_s"] = None  # AtariPreprocessing needs opencv-python
    return out


def _simulator_vs_raw(env_id: str, seconds: float) -> dict:
    """A simulator's loop (acting with random weights of the run's network, n-step
    bookkeeping, frames taken) against the raw vector env, alternating 0.2 s slices."""
    from d3q_core.algo.framememory import FrameLayout
    from d3q_core.algo.networks import choose_network
    from d3q_core.algo.qnet import init_weights
    from d3q_core.backends.local.shared import ParamStore, SharedCounters
    from d3q_core.config import build_config
    from d3q_core.envs import inspect_env, make_vector_env
    from d3q_core.roles.ports import SimulatorPorts
    from d3q_core.roles.simulator import Simulator

    info = inspect_env(env_id)
    cfg = build_config(None, [f"env.id={env_id}", f"simulators.envs_per_simulator={K}"])
    spec = choose_network(info, cfg.learner)
    ctx = spawn_context()
    ch = SimulatorPorts(None, ParamStore(ctx, spec.n_params), SharedCounters(ctx, 1), None,
                        ctx.Event(), ctx.Event(), ctx.Event())
    ch.params.publish(init_weights(spec, np.random.default_rng(0)), 0, 0)
    ch.replay_ready.set()
    sim = Simulator(cfg, spec, 0, 1, 0, layout=FrameLayout(info.frame_shape, info.stack))
    sim.iterate(ch)
    env = make_vector_env(env_id, K, 1)
    rng = np.random.default_rng(1)
    raw_steps, raw_s, sim_s, first = 0, 0.0, 0.0, sim.env_steps
    while raw_s < seconds or sim_s < seconds:
        t0 = end = time.perf_counter()
        while end - t0 < 0.2:
            env.step(rng.integers(0, info.n_actions, K).astype(np.int64))
            raw_steps += K
            end = time.perf_counter()
        raw_s += end - t0
        t0 = end
        while end - t0 < 0.2:
            if sim.iterate(ch)[0] is not None:
                sim.streams.take()  # what the send carries: the new frames
            end = time.perf_counter()
        sim_s += end - t0
    raw, steps = raw_steps / raw_s, (sim.env_steps - first) / sim_s
    return {"env": env_id, "raw_env_steps_per_s": raw, "simulator_env_steps_per_s": steps,
            "ratio": steps / raw, "target": 0.5 if info.family == "atari" else None}


def in_spawned(fn, *args):  # noqa: ANN001, ANN201 - a bench helper
    """As a simulator runs: a fresh interpreter, single-threaded BLAS."""
    with spawn_context().Pool(1) as pool:
        return pool.apply(fn, args)


LEARNER_CODE = """
import time, numpy as np
from d3q_core.config import build_config
from d3q_core.algo.devices import configure_threads, make_strategy
configure_threads({threads})
from d3q_core.algo.trainer import Trainer
from d3q_core.algo.networks import choose_network
from d3q_core.envs import inspect_env
cfg = build_config(None, ["env.id={env}", "learner.batch_size={batch}",
                          "learner.steps_per_call=1"])
spec = choose_network(inspect_env("{env}"), cfg.learner)
strategy, names = make_strategy("{devices}")
t = Trainer(spec, cfg.learner, strategy)
rng = np.random.default_rng(0)
rec = np.zeros(t.call_batch, t.record_dtype)
view = rec.view(np.uint8)
view[:] = rng.integers(0, 256, view.shape, dtype=np.uint8)
rec["action"] = rng.integers(0, spec.n_actions, len(rec))
rec["reward"], rec["discount"] = rng.normal(size=len(rec)), 0.97
w = np.ones(len(rec), np.float32)
for _ in range(3): t.train_records(rec, w)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < {seconds}:
    t.train_records(rec, w); n += 1
dt = time.perf_counter() - t0
print(t.replicas, t.global_batch, n / dt, n * t.call_batch / dt)
"""


def learner(env_id: str, devices: str, batch: int, threads: int, seconds: float) -> dict:
    from bench.learner_bench import run_code

    code = LEARNER_CODE.format(env=env_id, devices=devices, batch=batch, threads=threads,
                               seconds=seconds)
    return {"env": env_id, "devices": devices, **run_code(code, timeout=600)}


def peak_memory_run(capacity: int = 200_000, seconds: float = 240.0) -> dict:
    """A headless Pong run whose memory fills to `capacity` (a low replay ratio lets the
    simulator run ahead of the CPU learner): the run's peak memory, all processes."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "pong"
        cmd = [sys.executable, "-m", "d3q_tui.cli", "--no-ui", "--env", "ALE/Pong-v5",
               "--run-dir", str(run_dir), "--set", f"replay.capacity={capacity}",
               "--set", "replay.min_size=5000", "--set", "replay.samples_per_insert=0.02",
               "--set", "learner.batch_size=32", "--set", f"stop.max_env_steps={capacity}",
               "--set", f"stop.max_seconds={seconds}"]
        subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
        r = json.loads((run_dir / "result.json").read_text())
    return {"capacity": capacity, "env_steps": r["env_steps"],
            "peak_memory_bytes": r["peak_memory_bytes"], "wall_seconds": r["wall_seconds"]}


def run(quick: bool = False) -> dict:
    seconds = 2.0 if quick else 5.0
    out: dict = {}
    out["vector_envs"] = v = in_spawned(_vector_envs, seconds)
    gym_rate = v["gym_wrappers_steps_per_s"]
    print(f"Pong x{K}, random actions: ale-py vector env {v['ale_vector_steps_per_s']:,.0f} "
          f"steps/s; gymnasium wrappers "
          + (f"{gym_rate:,.0f}" if gym_rate else "not run (needs opencv-python)"), flush=True)
    out["simulators"] = []
    for env_id in ("ALE/Pong-v5", "MinAtar/Breakout-v1"):
        row = in_spawned(_simulator_vs_raw, env_id, seconds)
        out["simulators"].append(row)
        target = f", target {row['target']:.0%}" if row["target"] else ""
        print(f"simulator {env_id}: {row['simulator_env_steps_per_s']:,.0f} env steps/s of "
              f"{row['raw_env_steps_per_s']:,.0f} raw ({row['ratio']:.0%}{target})", flush=True)
    out["learner"] = []
    for env_id, batch in (("ALE/Pong-v5", 32), ("MinAtar/Breakout-v1", 128)):
        for devices, per, threads in (("cpu", batch, 2), ("cpu:2", batch // 2, 2)):
            try:
                row = learner(env_id, devices, per, threads, seconds)
            except RuntimeError as exc:
                print(f"learner {env_id} on {devices}: failed: {exc}")
                continue
            out["learner"].append(row)
            print(f"learner {env_id} on {devices} ({row['replicas']} x {per}): "
                  f"{row['samples_per_s']:,.0f} samples/s", flush=True)
    from bench import framememory_bench

    print("frame memory:", flush=True)
    out["frame_memory"] = framememory_bench.run(quick=quick)
    if not quick:
        out["peak_memory"] = p = peak_memory_run()
        print(f"a Pong run holding {p['env_steps']:,} transitions (capacity "
              f"{p['capacity']:,}): peak memory {p['peak_memory_bytes'] / 2**30:.2f} GiB, all "
              "processes", flush=True)
    return out


def plot_curve(run_dir: Path, png: Path, title: str) -> None:
    """Greedy evaluation mean (and max) against learner samples, from evals.jsonl, and the
    simulators' training episodes (exploring, rewards unclipped) from TensorBoard: with
    evaluations far apart (Atari: every 250k samples) they show what the few points hide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tests.test_rundir import read_events

    evals = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()
             if line.strip()]
    train = sorted((e.step, v.simple_value) for e in read_events(run_dir / "tb")
                   for v in e.summary.value if v.tag == "train/episode_return")
    xs = [e["learner_samples"] for e in evals]
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    if train:
        ax.plot([x for x, _ in train], [y for _, y in train], label="training episodes",
                color="#98a2b3", linewidth=0.8)
    ax.plot(xs, [e["mean"] for e in evals], label="eval mean", color="#e5c07b", marker=".")
    ax.plot(xs, [e["max"] for e in evals], label="eval max", color="#61afef", alpha=0.5)
    ax.set_xlabel("learner samples")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)


def training_run(env_id: str, minutes: float, workdir: Path, extra: list[str] | None = None
                 ) -> dict:
    """One headless run of `minutes` with the env's preset and nothing else changed."""
    run_dir = workdir / env_id.replace("/", "_")
    cmd = [sys.executable, "-m", "d3q_tui.cli", "--no-ui", "--env", env_id, "--run-dir",
           str(run_dir), "--set", f"stop.max_seconds={minutes * 60:g}", *(extra or [])]
    subprocess.run(cmd, capture_output=True, text=True, timeout=minutes * 60 + 600)
    r = json.loads((run_dir / "result.json").read_text())
    evals = r["evals"]
    first = next((e for e in evals if e["mean"] >= 10), None)
    return {"env": env_id, "minutes": minutes, "run_dir": str(run_dir),
            "best_eval_mean": r["best_eval_mean"], "last_eval_mean":
            evals[-1]["mean"] if evals else None, "evaluations": len(evals),
            "learner_samples": r["learner_samples"], "env_steps": r["env_steps"],
            "minutes_to_10": first["elapsed"] / 60 if first else None,
            "exit_code": r["exit_code"]}


def training(games: list[tuple[str, float]], keep: Path, assets: Path) -> list[dict]:
    rows = []
    keep.mkdir(parents=True, exist_ok=True)
    for env_id, minutes in games:
        row = training_run(env_id, minutes, keep)
        name = env_id.split("/")[-1].split("-")[0].lower()
        png = assets / f"{'minatar' if env_id.startswith('MinAtar') else 'atari'}-{name}.png"
        plot_curve(Path(row["run_dir"]), png, f"{env_id}: {minutes:g} min on this machine")
        row["curve"] = str(png)
        rows.append(row)
        print(f"{env_id} {minutes:g} min: best eval {row['best_eval_mean']}, last "
              f"{row['last_eval_mean']}, {row['learner_samples']:,} learner samples, "
              f"{row['env_steps']:,} env steps; curve {png}", flush=True)
    return rows


MINATAR_GAMES = [("MinAtar/Breakout-v1", 30.0), ("MinAtar/SpaceInvaders-v1", 10.0),
                 ("MinAtar/Asterix-v1", 10.0)]
