"""The Ray backend on a 2-node local cluster (one per session: this module's fixture), and
on a private instance of its own (`--address local`): placement by resources, a complete run
directory, a killed simulator actor restarted, and nothing left behind however the run ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path

import psutil
import pytest
import ray
from ray.cluster_utils import Cluster

from d3q_core.algo.memory import ReplayMemory
from d3q_core.storage.checkpoint import load_checkpoint, newest_checkpoint
from tests.helpers import TINY, Watched
from tests.test_rundir import read_events

# the head node takes the learner and the replay, the other node the simulators
LEARNER_NODE, SIM_NODE = "learner_node", "sim_node"
PLACED = ["--set", f"cluster.simulator_resources={{{SIM_NODE} = 0.01}}",
          "--set", f"cluster.learner_resources={{{LEARNER_NODE} = 0.01}}"]


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {LEARNER_NODE: 1}, "include_dashboard": False})
    c.sim_node = c.add_node(num_cpus=1, resources={SIM_NODE: 1})
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()


def tiny_placed_config(max_seconds: float, **cluster) -> dict:
    """TINY's settings for the API, one simulator on the sim node, no reachable goal."""
    return {"learner": {"hidden": (32, 32), "batch_size": 64},
            "replay": {"capacity": 5000, "min_size": 200},
            "simulators": {"count": 1, "envs_per_simulator": 4},
            "evaluation": {"episodes": 4, "every_learner_samples": 2000},
            "stop": {"goal": 10000.0, "max_seconds": max_seconds},
            "cluster": {"backend": "ray", "simulator_resources": {SIM_NODE: 0.01},
                        "learner_resources": {LEARNER_NODE: 0.01}, **cluster}}


def d3q_actor_processes() -> list[int]:
    """Processes of any d3q role actor (Ray titles them `ray::d3q_<role>`)."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "ray::d3q_" in " ".join(p.info["cmdline"] or []):
                out.append(p.pid)
        except psutil.Error:
            continue
    return out


def wait_gone(seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := d3q_actor_processes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.timeout(240)
def test_a_sharded_run_on_two_nodes_places_roles_and_leaves_a_full_run_dir(cluster, tmp_path):
    run_dir, shared = tmp_path / "run", tmp_path / "shared"
    w = Watched(["--no-ui", "--backend", "ray", "--address", cluster.address,
                 "--run-dir", str(run_dir), *TINY, *PLACED, "--set", "simulators.count=2",
                 "--set", "replay.shards=2", "--set", "replay.snapshot=true",
                 "--set", f"cluster.storage={shared}",
                 "--set", "stop.max_learner_samples=6000", "--set", "stop.goal=10000"])
    code, out, err = w.wait(timeout=200)
    assert code == 1, (out[-2000:], err[-2000:])  # the sample limit ended it
    assert "A worker died" not in out + err and "(raylet)" not in out + err
    result = json.loads((run_dir / "result.json").read_text())
    assert result["backend"] == "ray" and result["stop_reason"] == "max_learner_samples"
    # 6000 samples in batches of 256 with at most 8 unanswered per shard: the priorities
    # of both shards' batches came back to the shard that sent them
    assert result["learner_samples"] >= 6000
    nodes = result["nodes"]
    assert nodes["learner"] == nodes["replay"] == nodes["replay 1"]  # shards beside it
    assert nodes["simulator 0"] == nodes["simulator 1"] != nodes["learner"]
    assert result["best_eval_mean"] is not None
    # the learner's checkpoints and each shard's snapshot went to the storage, which the run
    # directory links to
    stored = shared / "run" / "checkpoints"
    assert list(stored.glob("ckpt-*.npz")) and list((run_dir / "checkpoints").glob("ckpt-*.npz"))
    sizes = [ReplayMemory.load(stored / name).stats().size
             for name in ("replay.npz", "replay-1.npz")]
    assert all(size > 0 for size in sizes) and sum(sizes) >= 200  # replay.min_size
    tags = {v.tag for e in read_events(run_dir / "tb") for v in e.summary.value}
    assert {"eval/mean_return", "replay/size", "simulators/env_steps"} <= tags
    assert wait_gone() == []  # every actor the run started has gone; the cluster stays
    assert len(ray.nodes()) == 2 and all(n["Alive"] for n in ray.nodes())


@pytest.mark.timeout(240)
def test_a_killed_simulator_actor_comes_back_and_steps_go_on(cluster, tmp_path):
    from d3q_core import train

    seen: dict = {"killed_at": None, "pid": None, "after": 0}

    def watch(snap) -> None:
        sim = next((p for p in snap.processes if p.role == "simulator" and p.pid), None)
        if sim is None:
            return
        if seen["killed_at"] is None and snap.env_steps > 3000:
            seen["killed_at"], seen["pid"], seen["node"] = snap.env_steps, sim.pid, sim.node
            os.kill(sim.pid, signal.SIGKILL)
        elif seen["killed_at"] is not None and sim.pid != seen["pid"]:
            seen["after"] = max(seen["after"], snap.env_steps)
            seen["new_node"] = sim.node
            if seen["after"] > seen["killed_at"] + 1000 and not seen.get("stopping"):
                seen["stopping"] = True  # seen: stop the run here (train's Ctrl-C)
                os.kill(os.getpid(), signal.SIGINT)

    config = tiny_placed_config(max_seconds=60.0)
    result = train(config, run_dir=tmp_path / "run", on_snapshot=watch)
    assert seen["killed_at"] is not None
    assert result.summary["restarts"] == {"simulator 0": 1}
    assert seen["after"] > seen["killed_at"] + 1000  # the new incarnation's steps count
    assert seen["new_node"] == seen["node"]  # back on a node with the resource
    assert result.exit_code == 130 and result.summary["stop_reason"] == "interrupted"
    assert wait_gone() == []


@pytest.mark.timeout(120)
def test_the_learners_answers_reach_a_replay_whose_experience_calls_all_wait(cluster):
    """Experience calls wait in the replay actor until stored, and the rate limiter may hold
    them until the learner's answers come: those must find a thread however many wait."""
    from d3q_core.backends.ray.backend import ACTOR_THREADS, role_actor_classes
    from d3q_core.backends.ray.data import EXPERIENCE_GROUP
    from d3q_core.backends.ray.mailbox import ANSWERS, EXPERIENCE

    replay = role_actor_classes(experience=2)["replay"].options(
        num_cpus=0, max_concurrency=ACTOR_THREADS).remote("d3q: test replay", None, 0)
    try:
        deliver = replay.deliver.options(concurrency_group=EXPERIENCE_GROUP)
        held = [deliver.remote(EXPERIENCE, [i]) for i in range(ACTOR_THREADS + 4)]
        answers = [replay.deliver.remote(ANSWERS, [i]) for i in range(ACTOR_THREADS)]
        assert ray.get(answers, timeout=60) == [True] * ACTOR_THREADS
        assert ray.wait(held, timeout=0)[0] == []  # nobody stored them: still waiting
    finally:
        ray.kill(replay, no_restart=True)


def test_a_backend_that_fails_to_start_leaves_no_actor(cluster, monkeypatch):
    from d3q_core.backends.ray import backend
    from d3q_core.config import build_config

    def broken(*_a, **_k):
        raise RuntimeError("telemetry broke")

    monkeypatch.setattr(backend, "RayTelemetry", broken)
    config = build_config(None, ["cluster.backend=ray"])
    with pytest.raises(RuntimeError, match="telemetry broke"):
        backend.RayBackend(config, None, n_simulators=1)
    deadline = time.monotonic() + 10
    while (hubs := [a for a in ray.util.list_named_actors(all_namespaces=True)
                    if a["name"].endswith("-hub")]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hubs == []


@pytest.mark.timeout(240)
def test_a_removed_nodes_simulators_come_back_when_a_node_with_the_resource_joins(cluster,
                                                                                   tmp_path):
    """Last of the cluster's tests: it takes the simulators' node away and adds another."""
    import threading

    from d3q_core import train

    state: dict = {"steps": 0, "sims": []}

    def watch(snap) -> None:
        state["steps"] = snap.env_steps
        state["sims"] = [(p.pid, p.node, p.restarts) for p in snap.processes
                         if p.role == "simulator"]

    config = tiny_placed_config(max_seconds=40.0,
                                evaluator_resources={LEARNER_NODE: 0.01})
    out: dict = {}
    run = threading.Thread(target=lambda: out.update(
        result=train(config, run_dir=tmp_path / "run", on_snapshot=watch)))
    run.start()

    def until(condition, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline and run.is_alive(), state
            time.sleep(0.2)

    until(lambda: state["steps"] > 3000, 60)
    (_, first_node, _), = state["sims"]
    cluster.remove_node(cluster.sim_node)
    until(lambda: state["sims"] and state["sims"][0][2] == 1, 40)  # seen dead: restarted
    removed_at = state["steps"]
    cluster.add_node(num_cpus=1, resources={SIM_NODE: 1})
    run.join(timeout=120)
    result = out["result"]
    assert result.summary["restarts"] == {"simulator 0": 1}
    (pid, node, _), = state["sims"]
    assert pid is not None and node not in (first_node, "?")  # running on the new node
    assert state["steps"] > removed_at + 1000
    assert wait_gone() == []


def _private_run(tmp_path, **kw) -> Watched:
    return Watched(["--no-ui", "--backend", "ray", "--address", "local",
                    "--run-dir", str(tmp_path / "run"), *TINY,
                    "--set", "stop.goal=10000", "--set", "stop.max_seconds=90"], **kw)


def _wait_for_training(w: Watched, run_dir, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        w.poll_children()
        if list((run_dir / "checkpoints").glob("ckpt-*.npz")):
            return
        assert w.proc.poll() is None, w.proc.communicate()
        time.sleep(0.2)
    raise TimeoutError("no checkpoint")


@pytest.mark.timeout(200)
@pytest.mark.parametrize("how", ["SIGTERM to the group", "SIGKILL to the run"])
def test_a_private_instance_leaves_nothing_however_the_run_ends(tmp_path, how):
    scratch = Path(tempfile.gettempdir())
    before = set(scratch.glob("d3q-samples-*"))
    w = _private_run(tmp_path, own_group=True)
    _wait_for_training(w, tmp_path / "run")
    # one machine: the samples went through FIFOs (fifo.py), in a folder of the run's
    assert set(scratch.glob("d3q-samples-*")) - before
    running = []
    for pid in w.seen:
        with contextlib.suppress(psutil.Error):
            running.append(" ".join(psutil.Process(pid).cmdline()))
    assert any("raylet" in cmd for cmd in running)
    # without cluster.include_dashboard, no dashboard process (Ray starts one regardless)
    assert not any("dashboard/dashboard.py" in cmd for cmd in running), running
    if how == "SIGTERM to the group":
        os.killpg(w.proc.pid, signal.SIGTERM)
        code, _, err = w.wait(timeout=60)
        assert code == 130, err[-2000:]
        result = json.loads((tmp_path / "run" / "result.json").read_text())
        assert result["stop_reason"] == "interrupted"
        # the signal reached d3q alone (the instance is in a session of its own), so the
        # learner was still there to write its final checkpoint
        _, meta = load_checkpoint(newest_checkpoint(tmp_path / "run"))
        assert meta["reason"] == "final"
    else:
        w.proc.kill()
        w.proc.wait(timeout=10)
    # the Ray instance's processes (head, raylet, agents, actors) and the reaper
    assert w.survivors(grace=15.0) == []
    assert set(scratch.glob("d3q-samples-*")) - before == set()  # the host removed it


def test_a_cluster_that_does_not_answer_is_one_line_and_nothing_on_disk(tmp_path):
    # (Ray's own retries would wait two minutes, printing C++ warnings on the terminal)
    w = Watched(["--no-ui", "--backend", "ray", "--address", "127.0.0.1:1",
                 "--run-dir", str(tmp_path / "run")])
    code, out, err = w.wait(timeout=60)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "cluster.address" in lines[0], err
    assert not (tmp_path / "run").exists()
