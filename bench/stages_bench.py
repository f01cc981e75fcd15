"""Each stage of the pipeline against its own limit, on this machine, in one run.

- simulators: env steps/s of a simulator with the NumPy policy vs the same vector env stepped
  with random actions (the limit); 32 envs per simulator
- replay service: sample batches served + priority updates per second across the process
  boundary vs the in-process memory (the limit)
- learner: samples/s inside a real run vs an isolated learner on synthetic batches (the
  limit), and the share of its time spent waiting for batches
- parameter broadcast: publish -> a simulator acting on it
- start-up: command -> learner ready, first learner step, first evaluation
- memory: every d3q process's PSS together, at its peak in a default run
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import learner_bench
from d3q_core.algo.qnet import QNetSpec, init_weights
from d3q_core.algo.transitions import transition_dtype
from d3q_core.backends.local.process import spawn_context
from d3q_core.backends.local.shared import ParamStore, SharedCounters
from d3q_core.config import build_config
from d3q_core.envs import make_vector_env
from d3q_core.roles.ports import SimulatorPorts
from d3q_core.roles.simulator import Simulator

ENVS = 32


def _simulator_vs_raw(seconds: float) -> dict:
    """Both for `seconds` in alternating 0.1 s slices, so that load from whatever else runs on
    this shared machine falls on both alike."""
    env = make_vector_env("CartPole-v1", ENVS, 0)
    cfg = build_config(None, [f"simulators.envs_per_simulator={ENVS}"])
    spec = QNetSpec(4, 2, tuple(cfg.learner.hidden), cfg.learner.dueling)
    ctx = spawn_context()
    ch = SimulatorPorts(None, ParamStore(ctx, spec.n_params), SharedCounters(ctx, 1), None,
                        ctx.Event(), ctx.Event(), ctx.Event())  # no replay, no events
    ch.params.publish(init_weights(spec, np.random.default_rng(0)), 0, 0)
    ch.replay_ready.set()  # after warm-up
    sim = Simulator(cfg, spec, 0, 1, 0)
    sim.iterate(ch)  # picks the parameters up; compiles the kernels if not cached
    raw_steps = batches = 0
    raw_s = sim_s = 0.0
    first_steps = sim.env_steps
    while raw_s < seconds or sim_s < seconds:
        t0 = end = time.perf_counter()
        while end - t0 < 0.1:
            env.step(env.action_space.sample())
            raw_steps += ENVS
            end = time.perf_counter()
        raw_s += end - t0
        t0 = end
        while end - t0 < 0.1:  # the process loop minus the socket send
            batches += sim.iterate(ch)[1] is not None
            end = time.perf_counter()
        sim_s += end - t0
    assert batches > 0, "no batch with initial priorities"
    raw, policy = raw_steps / raw_s, (sim.env_steps - first_steps) / sim_s
    return {"raw_env_steps_per_s": raw, "simulator_env_steps_per_s": policy,
            "ratio": policy / raw, "target": 0.5}


def simulator_vs_raw(seconds: float = 3.0) -> dict:
    """In a spawned process, as a simulator runs (single-threaded BLAS, fresh interpreter)."""
    with spawn_context().Pool(1) as pool:
        return pool.apply(_simulator_vs_raw, (seconds,))


def replay_service_vs_memory(seconds: float = 4.0, batch: int = 128) -> dict:
    """The bench process plays the simulators (feeding batches) and a learner that trains
    infinitely fast (it only returns priorities)."""
    from d3q_core.algo.memory import ReplayMemory
    from d3q_core.backends.local.backend import LocalBackend
    from d3q_core.backends.local.inbox import ExperienceSender
    from d3q_core.backends.local.link import BatchReceiver
    from d3q_core.roles.messages import Experience
    from d3q_core.run.plan import RolePlan

    cfg = build_config(None, ["replay.samples_per_insert=1000", "replay.min_size=1000"])
    dtype = transition_dtype(4)
    mem = ReplayMemory(cfg.replay.capacity, dtype, seed=0)
    mem.add(np.zeros(cfg.replay.capacity, dtype), np.random.rand(cfg.replay.capacity))
    rng = np.random.default_rng(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds / 2:
        s = mem.sample(batch, 0.5)
        mem.update_priorities(s.indices, rng.random(batch))
        n += 1
    in_process = n / (time.perf_counter() - t0)

    # the replay role as a run starts it; this process is its simulator and its learner
    spec = QNetSpec(4, 2, tuple(cfg.learner.hidden), cfg.learner.dueling)
    backend = LocalBackend(cfg, spec, 1)
    backend.call_batch.value = batch
    plan = RolePlan(cfg, spec, 1.0, 1, Path(tempfile.gettempdir()), 1)
    replay = backend.start(plan.replays()[0])
    link, stop = backend.sample_link, backend.flags.stop_all
    receiver = BatchReceiver(link, dtype, batch)
    records = Experience(0, np.zeros(64, dtype), None)
    sender = ExperienceSender(backend.inbox_address, 64, stop)
    for _ in range(40):
        sender.send(records)
    served, t0 = 0, None
    try:
        while True:
            got = receiver.get(timeout=10)
            if got is None:
                break
            if t0 is None:
                t0 = time.perf_counter()
            receiver.answer(got[1], rng.random(batch).astype(np.float32))
            served += 1
            if served % 32 == 0:
                sender.send(records, wait=False)  # never block the consumer
            if time.perf_counter() - t0 > seconds:
                break
        across = served / (time.perf_counter() - t0)
    finally:
        stop.set()
        replay.join(5)
        if replay.is_alive():
            replay.terminate()
        link.close()
        backend.close()
    return {"batch": batch, "in_process_batches_per_s": in_process,
            "service_batches_per_s": across, "ratio": across / in_process}


def isolated_learner(seconds: float = 3.0) -> float:
    """The learner alone on synthetic records: one CPU device, one thread, as in the pipeline."""
    batch = build_config(None, []).learner.batch_size
    return learner_bench.measure("cpu", batch, 1, seconds)["samples_per_s"]


def pipeline_run(seconds: float = 20.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="d3q-stages-") as tmp:
        run_dir = Path(tmp) / "run"
        subprocess.run([sys.executable, "-m", "d3q_tui.cli", "--no-ui", "--run-dir",
                        str(run_dir), "--set", "stop.goal=100000",
                        "--set", f"stop.max_seconds={seconds}"],
                       capture_output=True, text=True, timeout=seconds + 60)
        return json.loads((run_dir / "result.json").read_text())


def steady_learner_rate(result: dict) -> float:
    """Learner samples/s over the run's steady part, from the evaluations' (elapsed, learner
    samples) tags: the result's own figure is one 0.5 s stats window, too noisy to compare."""
    evals = result.get("evals") or []
    if len(evals) < 3:
        return float(result.get("learner_samples_per_s") or 0.0)
    a, b = evals[1], evals[-1]
    return (b["learner_samples"] - a["learner_samples"]) / max(b["elapsed"] - a["elapsed"], 1e-9)


def run(quick: bool = False) -> dict:
    out: dict = {}
    sim = simulator_vs_raw(2.0 if quick else 3.0)
    out["simulators"] = sim
    print(f"simulator ({ENVS} envs, NumPy policy): {sim['simulator_env_steps_per_s']:,.0f} "
          f"env steps/s vs raw vector env {sim['raw_env_steps_per_s']:,.0f}/s: "
          f"{sim['ratio']:.0%} (target >= 50%)", flush=True)
    rep = replay_service_vs_memory(2.0 if quick else 4.0)
    out["replay_service"] = rep
    print(f"replay service: {rep['service_batches_per_s']:,.0f} batches/s served with "
          f"priority updates across processes vs {rep['in_process_batches_per_s']:,.0f}/s "
          f"in-process (batch {rep['batch']}): {rep['ratio']:.0%}", flush=True)
    # Pipeline runs and isolated measurements alternate (iso, run, iso, run, iso) and the
    # ratio is of their means: on a shared VM the same isolated measurement drifts +-15% from
    # one minute to the next, more than the effect measured.
    runs = 1 if quick else 2
    iso_rates = [isolated_learner(2.0 if quick else 3.0)]
    results = []
    for _ in range(runs):
        results.append(pipeline_run(15.0 if quick else 20.0))
        iso_rates.append(isolated_learner(2.0 if quick else 3.0))
    result = results[0]  # the other figures come from the first run
    rates = [steady_learner_rate(r) for r in results]
    lr, iso = sum(rates) / len(rates), sum(iso_rates) / len(iso_rates)
    wait = max(r.get("learner_wait_fraction") or 0.0 for r in results)
    out["learner"] = {"pipeline_samples_per_s": lr, "isolated_samples_per_s": iso,
                      "pipeline_runs": rates, "isolated_runs": iso_rates,
                      "ratio": lr / iso, "wait_fraction": wait}
    print(f"learner: {lr:,.0f} samples/s in the pipeline (mean from the second evaluation to "
          f"the last; runs {', '.join(f'{r:,.0f}' for r in rates)}) vs {iso:,.0f} isolated "
          f"({', '.join(f'{r:,.0f}' for r in iso_rates)}, alternating with the runs): "
          f"{lr / iso:.1%} (target >= 90%); waiting for batches {wait:.1%} of its time at most "
          f"(target < 5%)")
    lat = result.get("param_latency_s")
    out["broadcast_latency_s"] = lat
    print(f"parameter broadcast, publish -> simulator acting on it: median "
          f"{(lat or 0) * 1000:.1f} ms")
    tl = result.get("timeline", {})
    out["startup"] = tl
    print(f"start-up from the command: replay ready {tl.get('replay_ready', 0):.2f} s, "
          f"learner ready {tl.get('learner_ready', 0):.2f} s, first learner stats "
          f"{tl.get('first_learner_stats', 0):.2f} s, first evaluation "
          f"{tl.get('first_eval', 0):.2f} s")
    mem = result.get("peak_memory_bytes", 0)
    out["peak_memory_bytes"] = mem
    print(f"memory: every d3q process together (PSS), peak {mem / 2**20:,.0f} MiB "
          f"(target < 1 GB)")
    return out


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
