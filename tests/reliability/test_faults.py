"""One subprocess test per fault: each asserts the run's outcome and that no process is left."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time

import psutil
import pytest

from tests.helpers import TINY, Watched


def wait_for(predicate, timeout: float, w: Watched, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        w.poll_children()
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    w.kill_all()
    pytest.fail(f"timed out waiting for {what}")


def role_pid(w: Watched, title: str) -> int | None:
    for p in w.poll_children():
        try:
            if title in " ".join(p.cmdline()):
                return p.pid
        except psutil.NoSuchProcess:
            continue
    return None


def read_result(run_dir):
    return json.loads((run_dir / "result.json").read_text())


def newest_file_loads(run_dir) -> str:
    """The newest ckpt-*.npz by name must load whole (nothing skipped) and hold only finite
    weights; returns its file name."""
    import numpy as np

    from d3q_core.storage.checkpoint import load_checkpoint

    files = sorted((run_dir / "checkpoints").glob("ckpt-*.npz"))
    assert files, "no checkpoint at all"
    arrays, _ = load_checkpoint(files[-1])
    assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")
    return files[-1].name


def long_run(tmp_path, *extra: str, env: dict | None = None) -> tuple[Watched, object]:
    run_dir = tmp_path / "run"
    w = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000",
                 *extra], env=env)
    return w, run_dir


def started(run_dir) -> bool:
    log = run_dir / "log.txt"
    return log.is_file() and "learner ready" in log.read_text()


def read_log_has(run_dir, fragment: str) -> bool:
    log = run_dir / "log.txt"
    return log.is_file() and fragment in log.read_text(errors="replace")


def log_time(run_dir, fragment: str) -> float:
    """Seconds since the run's start of the first log line containing `fragment`."""
    for line in (run_dir / "log.txt").read_text(errors="replace").splitlines():
        if fragment in line and line[:10].strip().endswith("s"):  # d3q's own lines
            return float(line.split("s", 1)[0])
    raise AssertionError(f"no log line with {fragment!r}")


@pytest.mark.timeout(150)
def test_killed_simulator_is_restarted_and_training_goes_on(tmp_path, report):
    w, run_dir = long_run(tmp_path, "--set", "stop.max_learner_samples=40000")
    wait_for(lambda: started(run_dir), 90, w, "learner ready")
    pid = wait_for(lambda: role_pid(w, "d3q: simulator 0"), 30, w, "simulator 0")
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: role_pid(w, "d3q: simulator 0") not in (None, pid), 30, w, "a new simulator 0")
    took = time.monotonic() - t0
    code, out, err = w.wait(timeout=120)
    assert code == 1, (out, err)  # the sample limit ended it, not the fault
    result = read_result(run_dir)
    assert result["stop_reason"] == "max_learner_samples" and result["exit_code"] == 1
    assert result["restarts"] == {"simulator 0": 1}
    assert w.survivors() == []
    report("SIGKILL a simulator", took, exit=code, stop_reason=result["stop_reason"],
           restarts=result["restarts"], processes_left=0)


@pytest.mark.timeout(150)
def test_simulator_exception_is_restarted_with_the_same_index(tmp_path, report):
    w, run_dir = long_run(tmp_path, "--set", "stop.max_learner_samples=30000",
                          env={"D3Q_FAULTS": "simulator_raise_after=50"})
    code, out, err = w.wait(timeout=120)
    assert code == 1, (out, err)
    result = read_result(run_dir)
    assert result["restarts"] == {"simulator 0": 1} and result["learner_samples"] >= 30000
    assert w.survivors() == []
    report("an exception in a simulator", log_time(run_dir, "restart #1")
           - log_time(run_dir, "injected fault"), exit=code, stop_reason=result["stop_reason"],
           restarts=result["restarts"], processes_left=0)


@pytest.mark.timeout(150)
def test_too_many_simulator_restarts_stop_the_run(tmp_path, report):
    w, run_dir = long_run(tmp_path, "--set", "stop.max_restarts_per_minute=2",
                          env={"D3Q_FAULTS": "simulator_always_raise_after=5"})
    code, out, err = w.wait(timeout=120)
    assert code == 3, (out, err)
    result = read_result(run_dir)
    assert result["stop_reason"] == "error" and "3 times within a minute" in result["error"]
    assert result["restarts"] == {"simulator 0": 2}
    assert w.survivors() == []
    report("a simulator failing on every start (limit 2 a minute)", result["wall_seconds"]
           - log_time(run_dir, "within a minute"), exit=code, stop_reason=result["stop_reason"],
           restarts=result["restarts"], processes_left=0)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("title", ["d3q: replay", "d3q: learner"])
def test_dead_replay_or_learner_ends_the_run(tmp_path, title, report):
    w, run_dir = long_run(tmp_path)
    wait_for(lambda: started(run_dir) and list((run_dir / "checkpoints").glob("ckpt-*")),
             90, w, "a checkpoint")
    pid = wait_for(lambda: role_pid(w, title), 30, w, title)
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    code, out, err = w.wait(timeout=60)
    took = time.monotonic() - t0
    assert code == 3, (out, err)
    result = read_result(run_dir)
    assert result["stop_reason"] == "error"
    assert result["error"].startswith(title.split(": ")[1]) and "\n" not in result["error"]
    newest = newest_file_loads(run_dir)  # the last checkpoint is whole, not skipped
    assert w.survivors() == []
    report(f"SIGKILL the {title.split(': ')[1]}", took, exit=code,
           stop_reason=result["stop_reason"], newest_checkpoint_loads=newest,
           processes_left=0)


@pytest.mark.timeout(150)
def test_children_exit_when_the_orchestrator_is_killed(tmp_path, report):
    w, run_dir = long_run(tmp_path)
    wait_for(lambda: started(run_dir), 90, w, "learner ready")
    kids = w.poll_children()
    assert len(kids) >= 4
    os.kill(w.proc.pid, signal.SIGKILL)
    t0 = time.monotonic()
    w.proc.wait(10)
    assert w.survivors(grace=5.0) == []
    report("SIGKILL the orchestrator (d3q-tui itself)", time.monotonic() - t0,
           children_exited=len(kids), processes_left=0)


@pytest.mark.timeout(150)
def test_workers_yield_the_cores_and_the_evaluator_most(tmp_path):
    """Keys stay quick because workers run at a lower priority than the face; the evaluator,
    which only lags when it yields, runs lower still so the pacing stages get the cores."""
    from d3q_core.backends.local.process import EVALUATOR_NICENESS, WORKER_NICENESS

    w, run_dir = long_run(tmp_path)
    wait_for(lambda: started(run_dir), 90, w, "learner ready")
    base = psutil.Process(w.proc.pid).nice()
    by_title = {}
    for k in w.poll_children():
        with contextlib.suppress(psutil.Error):
            by_title[" ".join(k.cmdline())] = k.nice() - base
    nices = {t.split(": ", 1)[1].strip(): n for t, n in by_title.items() if t.startswith("d3q: ")}
    w.proc.send_signal(signal.SIGTERM)
    w.wait(timeout=60)
    assert nices.get("evaluator") == EVALUATOR_NICENESS > WORKER_NICENESS, by_title
    assert nices["learner"] == nices["replay"] == nices["simulator 0"] == WORKER_NICENESS
    assert w.survivors() == []


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("spec", "what", "fault_name"), [
    ("learner_nan_after=1500", "loss", "a NaN loss in the learner"),
    ("learner_nan_weights_after=1500", "weights", "NaN weights in the learner"),
])
def test_non_finite_values_stop_the_run_and_keep_the_last_good_checkpoint(
        tmp_path, report, spec, what, fault_name):
    w, run_dir = long_run(tmp_path, env={"D3Q_FAULTS": spec})
    code, out, err = w.wait(timeout=120)
    assert code == 3, (out, err)
    result = read_result(run_dir)
    assert result["error"].startswith(f"learner: non-finite {what}")
    named = result["error"].rsplit("last good checkpoint: ", 1)[1]
    assert named != "none yet" and named.endswith(newest_file_loads(run_dir))  # kept, whole
    assert result["last_checkpoint"] == named  # nothing was saved after the NaN
    assert w.survivors() == []
    report(fault_name, result["wall_seconds"] - log_time(run_dir, "non-finite"), exit=code,
           stop_reason=result["stop_reason"], last_good_checkpoint_kept=True,
           processes_left=0)


@pytest.mark.timeout(150)
def test_non_finite_priorities_from_a_simulator_do_not_kill_the_replay(tmp_path, report):
    w, run_dir = long_run(tmp_path, "--set", "stop.max_learner_samples=20000",
                          env={"D3Q_FAULTS": "simulator_nan_priorities"})
    code, out, err = w.wait(timeout=120)
    assert code == 1, (out, err)
    result = read_result(run_dir)
    assert result["stop_reason"] == "max_learner_samples" and result["error"] is None
    assert w.survivors() == []
    report("NaN initial priorities from a simulator", None, exit=code,
           stop_reason=result["stop_reason"], replay_alive=True, processes_left=0)


@pytest.mark.timeout(150)
def test_stall_is_reported_by_stage_and_stops_the_run(tmp_path, report):
    w, run_dir = long_run(tmp_path, "--set", "stop.stall_warn_seconds=2",
                          "--set", "stop.stall_stop_seconds=5",
                          env={"D3Q_FAULTS": "replay_stop_serving_after=30"})
    code, out, err = w.wait(timeout=120)
    assert code == 3, (out, err)
    result = read_result(run_dir)
    assert result["stop_reason"] == "stalled"
    assert result["error"].endswith("the replay is not serving sample batches")
    assert w.survivors() == []
    report("the replay stops serving (warn 2 s, stop 5 s)", result["wall_seconds"]
           - log_time(run_dir, "stalled"), exit=code, stop_reason=result["stop_reason"],
           stage="the replay is not serving sample batches", processes_left=0)


@pytest.mark.timeout(150)
def test_a_stopped_learner_is_named_as_the_stalled_stage(tmp_path, report):
    w, run_dir = long_run(tmp_path, "--set", "stop.stall_warn_seconds=3",
                          "--set", "stop.stall_stop_seconds=6")
    wait_for(lambda: started(run_dir) and read_log_has(run_dir, "new best eval"), 90, w,
             "training")
    pid = wait_for(lambda: role_pid(w, "d3q: learner"), 30, w, "the learner")
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        code, out, err = w.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    took = time.monotonic() - t0
    assert code == 3, (out, err)
    result = read_result(run_dir)
    assert result["stop_reason"] == "stalled" and "the learner is not" in result["error"]
    assert w.survivors() == []
    report("SIGSTOP the learner (warn 3 s, stop 6 s)", took, exit=code,
           stop_reason=result["stop_reason"], stage=result["error"].split(": ", 1)[1],
           processes_left=0)


@pytest.mark.timeout(150)
def test_a_learner_that_never_becomes_ready_is_caught(tmp_path, report):
    w, run_dir = long_run(tmp_path, "--set", "stop.stall_warn_seconds=2",
                          "--set", "stop.startup_timeout_seconds=6")
    pid = wait_for(lambda: role_pid(w, "d3q: learner"), 30, w, "the learner")
    os.kill(pid, signal.SIGSTOP)  # before TensorFlow is up: it never says it is ready
    t0 = time.monotonic()
    try:
        code, out, err = w.wait(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    assert code == 3, (out, err)
    result = read_result(run_dir)
    assert result["stop_reason"] == "stalled"
    assert result["error"].endswith("the learner has not become ready")
    assert w.survivors() == []
    report("a learner that never becomes ready (start-up limit 6 s)", time.monotonic() - t0,
           exit=code, stop_reason=result["stop_reason"], stage="the learner has not become "
           "ready", processes_left=0)


@pytest.mark.timeout(150)
def test_killed_evaluator_is_restarted_and_evaluations_go_on(tmp_path, report):
    w, run_dir = long_run(tmp_path, "--set", "stop.max_learner_samples=60000")
    wait_for(lambda: started(run_dir) and read_log_has(run_dir, "new best eval"), 90, w,
             "a first evaluation")
    pid = wait_for(lambda: role_pid(w, "d3q: evaluator"), 30, w, "the evaluator")
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    wait_for(lambda: role_pid(w, "d3q: evaluator") not in (None, pid), 30, w, "a new evaluator")
    took = time.monotonic() - t0
    code, out, err = w.wait(timeout=120)
    assert code == 1, (out, err)
    result = read_result(run_dir)
    assert result["stop_reason"] == "max_learner_samples" and result["error"] is None
    assert result["restarts"] == {"evaluator": 1}
    later = [e for e in result["evals"] if e["elapsed"] > log_time(run_dir, "evaluator died")]
    assert later  # the new incarnation evaluates
    assert w.survivors() == []
    report("SIGKILL the evaluator", took, exit=code, stop_reason=result["stop_reason"],
           restarts=result["restarts"], evaluations_after_restart=len(later),
           processes_left=0)


@pytest.mark.timeout(240)
def test_resume_continues_counters_history_and_replay(tmp_path, report):
    run_dir = tmp_path / "run"
    first = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000",
                     "--set", "stop.max_learner_samples=12000", "--set", "replay.snapshot=true"])
    code, out, err = first.wait(timeout=120)
    assert code == 1, (out, err)
    r1 = read_result(run_dir)
    assert (run_dir / "checkpoints" / "replay.npz").is_file()
    assert_resume_restores_what_was_saved(run_dir)
    second = Watched(["--no-ui", "--resume", str(run_dir),
                      "--set", "stop.max_learner_samples=24000"])
    t0 = time.monotonic()
    code, out, err = second.wait(timeout=120)
    took = time.monotonic() - t0
    assert code == 1, (out, err)
    r2 = read_result(run_dir)
    assert r2["resumed_from"] and r2["learner_samples"] >= 24000
    assert r2["env_steps"] > r1["env_steps"]  # counted on from the checkpoint
    assert len(r2["evals"]) > len(r1["evals"])  # history kept and extended
    assert r2["evals"][: len(r1["evals"])] == r1["evals"]
    assert first.survivors() == [] and second.survivors() == []
    report("--resume after a stopped run (replay.snapshot = true)", took, exit=code,
           learner_samples=f"{r1['learner_samples']:,} -> {r2['learner_samples']:,}",
           eval_history_kept=True, processes_left=0)


def assert_resume_restores_what_was_saved(run_dir) -> None:
    """The resume path itself (the learner and replay roles as a resumed run builds them)
    restores exactly the weights, optimizer state and replay memory that were saved."""
    import numpy as np

    from d3q_core.algo.qnet import QNetSpec
    from d3q_core.roles.learner import Learner
    from d3q_core.roles.replay import Replay
    from d3q_core.storage.checkpoint import load_checkpoint, newest_checkpoint
    from d3q_core.storage.rundir import RunDir

    cfg = RunDir.open_existing(run_dir).read_config()
    ckpt = newest_checkpoint(run_dir)
    saved, meta = load_checkpoint(ckpt)
    learner = Learner(cfg, QNetSpec.from_dict(meta["spec"]), run_dir / "checkpoints", ckpt, 1)
    restored = learner.trainer.state_arrays()
    assert set(restored) == set(saved) and any(k.startswith("opt") for k in saved), saved.keys()
    for key in saved:
        np.testing.assert_array_equal(restored[key], saved[key], err_msg=key)
    assert learner.samples == meta["learner_samples"]
    snapshot = run_dir / "checkpoints" / "replay.npz"
    replay = Replay(cfg, QNetSpec.from_dict(meta["spec"]), 0, snapshot)
    with np.load(snapshot) as data:
        n = len(data["records"])
        assert len(replay.memory) == n > 0
        np.testing.assert_array_equal(replay.memory._records[:n], data["records"])
        np.testing.assert_allclose(replay.memory.priorities()[:n], data["priorities"])


def test_resume_refuses_other_settings_and_missing_checkpoints(tmp_path, report):
    run_dir = tmp_path / "empty"
    run_dir.mkdir()
    for args, fragment in [
        (["--resume", str(tmp_path / "nowhere")], "no such run directory"),
        (["--resume", str(run_dir)], "config.toml: missing"),
    ]:
        w = Watched(["--no-ui", *args])
        code, _, err = w.wait(timeout=60)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    (run_dir / "config.toml").write_text("[env]\nid = \"CartPole-v1\"\n")
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "ckpt-000000000100.npz").write_bytes(b"not a zip")
    w = Watched(["--no-ui", "--resume", str(run_dir)])
    t0 = time.monotonic()
    code, _, err = w.wait(timeout=60)
    assert code == 2 and "no loadable checkpoint" in err, err
    report("--resume with a corrupt checkpoint", time.monotonic() - t0, exit=code,
           error=err.strip().replace(str(tmp_path), "TMP"))
    w = Watched(["--no-ui", "--resume", str(run_dir), "--set", "learner.batch_size=3"])
    code, _, err = w.wait(timeout=60)
    assert code == 2 and "only stop.* and cluster.* settings" in err, err


@pytest.mark.timeout(150)
def test_full_disk_ends_the_run_and_leaves_nothing_half_written(tmp_path, report):
    """A file-size limit stands in for a full disk: small files fit, a checkpoint does not."""
    import resource
    import subprocess

    from tests.helpers import REPO, child_env, d3q_command

    run_dir = tmp_path / "run"

    def limit():  # runs in the child before exec
        # shared memory is file-backed too: 768 KiB fits the 256x256 network's weights
        # (~270 KB) but not a checkpoint (online, target and Adam's two moments, ~1.1 MB)
        resource.setrlimit(resource.RLIMIT_FSIZE, (768 * 1024, 768 * 1024))

    proc = subprocess.run(
        d3q_command("--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=100000",
                    "--set", "learner.hidden=256,256"),
        cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=120,
        preexec_fn=limit)
    assert proc.returncode == 3, proc.stderr
    result = read_result(run_dir)
    assert "checkpoint failed" in result["error"] and "file too large" in result["error"]
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir()]
    assert not any(name.endswith(".tmp") for name in leftovers), leftovers
    assert not list((run_dir / "checkpoints").glob("ckpt-*.npz"))
    report("a file-size limit at the first checkpoint", result["wall_seconds"]
           - log_time(run_dir, "checkpoint failed"), exit=proc.returncode,
           stop_reason=result["stop_reason"], temp_or_torn_files=0)


def test_unwritable_run_dir_and_image_envs_are_bad_input(tmp_path, report):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for args, fragment in [
        (["--run-dir", str(blocker / "run")], "cannot create run directory"),
        (["--env", "CarRacing-v3"], "CarRacing-v3"),
        (["--env", "FrozenLake-v1"], "1-D Box"),
    ]:
        w = Watched(["--no-ui", *args])
        t0 = time.monotonic()
        code, _, err = w.wait(timeout=60)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, (args, err)
        assert "Traceback" not in err
        report(" ".join(args).replace(str(tmp_path), "TMP"), time.monotonic() - t0, exit=code,
               error=err.strip().replace(str(tmp_path), "TMP"))


@pytest.mark.timeout(180)
def test_memory_levels_off_with_a_slow_learner(tmp_path, report):
    """Simulators outpace a learner slowed to a crawl; bounded queues and the rate limiter
    must keep every process's memory flat."""
    w, run_dir = long_run(tmp_path, "--set", "stop.max_seconds=120",
                          env={"D3Q_FAULTS": "learner_sleep=0.05"})
    wait_for(lambda: started(run_dir), 90, w, "learner ready")

    def rss() -> dict[int, int]:
        out = {}
        for p in w.poll_children():
            try:
                out[p.pid] = p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return out

    time.sleep(6)
    early = rss()
    time.sleep(12)
    late = rss()
    w.proc.send_signal(signal.SIGTERM)  # measured: no need to wait for the time limit
    code, out, err = w.wait(timeout=60)
    assert code == 130, (out, err)
    growth = 0
    for pid, before in early.items():
        if pid in late:
            assert late[pid] - before < max(0.05 * before, 8 * 2**20), (pid, before, late[pid])
            growth = max(growth, late[pid] - before)
    replay = read_result(run_dir)
    assert replay["env_steps"] < 200_000  # the simulators were held back, not free-running
    assert w.survivors() == []
    report("a learner slowed to 20 steps/s", None, exit=code,
           env_steps=f"{replay['env_steps']:,} (held back)",
           largest_rss_change=f"{growth / 2**20:+.1f} MiB over 12 s", processes_left=0)
