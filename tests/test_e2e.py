"""End to end: a headless run in a subprocess with small limits leaves a complete run
directory and no process behind."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import TINY, Watched
from tests.test_rundir import read_events


@pytest.mark.timeout(240)
def test_headless_run_with_a_sample_limit(tmp_path):
    run_dir = tmp_path / "run"
    w = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY,
                 "--set", "stop.max_learner_samples=6000", "--set", "stop.goal=10000"])
    code, out, err = w.wait(timeout=200)
    assert code == 1, (out, err)  # a limit ended the run
    # the terminal shows d3q's own lines: TensorFlow's start-up noise goes to log.txt
    for noise in ("absl::InitializeLog", "cuInit", "cuda drivers", "oneDNN", "E0000"):
        assert noise not in out + err, noise
    assert len(w.seen) >= 4  # learner, replay, evaluator and at least one simulator ran
    assert w.survivors() == []

    result = json.loads((run_dir / "result.json").read_text())
    for key in ("solved", "stop_reason", "seconds_to_goal", "learner_samples_at_goal",
                "env_steps_at_goal", "best_eval_mean", "confirmed_eval_mean", "wall_seconds",
                "seed"):
        assert key in result
    assert result["solved"] is False and result["stop_reason"] == "max_learner_samples"
    assert result["exit_code"] == 1
    assert result["learner_samples"] >= 6000
    assert result["best_eval_mean"] is not None  # evaluations ran every 2000 samples
    assert (run_dir / "config.toml").is_file()
    assert list((run_dir / "checkpoints").glob("ckpt-*.npz"))
    events = list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    scalars: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(run_dir / "tb"):
        for v in event.summary.value:
            scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
    evals = result["evals"]
    # every evaluation against learner samples and against env steps, the same value
    assert scalars["eval/mean_return"] == [(e["learner_samples"], pytest.approx(e["mean"]))
                                           for e in evals]
    assert scalars["by_env_steps/eval/mean_return"] == [
        (e["env_steps"], pytest.approx(e["mean"])) for e in evals]
    for tag in ("replay/size", "simulators/env_steps"):
        by_samples, by_steps = scalars[tag], scalars[f"by_env_steps/{tag}"]
        assert by_samples and [v for _, v in by_samples] == [v for _, v in by_steps], tag
    assert "run summary" in out


@pytest.mark.timeout(240)
def test_headless_run_reaches_an_easy_goal(tmp_path):
    run_dir, shared = tmp_path / "run", tmp_path / "shared"
    w = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=30",
                 "--set", "stop.max_seconds=150", "--set", f"cluster.storage={shared}"])
    code, out, err = w.wait(timeout=200)
    assert code == 0, (out, err)
    assert w.survivors() == []
    result = json.loads((run_dir / "result.json").read_text())
    assert result["solved"] is True and result["stop_reason"] == "goal"
    assert result["seconds_to_goal"] > 0 and result["env_steps_at_goal"] > 0
    assert result["confirmed_eval_mean"] is not None
    assert (run_dir / "checkpoints" / "best.npz").is_file()
    # cluster.storage: the checkpoints are there, the run directory links to them
    assert (shared / "run" / "checkpoints" / "best.npz").is_file()
    assert list((shared / "run" / "checkpoints").glob("ckpt-*.npz"))
    # the crossing counted only after the re-check: 4 episodes + 68 more of the same version
    assert "at the goal over 72 greedy episodes" in (run_dir / "log.txt").read_text()


def test_bad_input_is_one_line_and_exit_2(tmp_path, report):
    (tmp_path / "broken.toml").write_text("[learner\nbatch_size = 64\n")
    (tmp_path / "afile").write_text("x")
    for args, fragment in [
        (["--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
        (["--env", "Pendulum-v1"], "Discrete"),
        (["--set", "replay.capacity=0"], "replay.capacity"),
        (["--config", str(tmp_path / "missing.toml")], "missing.toml"),
        (["--config", str(tmp_path / "broken.toml")], "broken.toml"),
        (["--set", "learner.bogus=1"], "learner.bogus"),
        (["--bogus-flag"], "--bogus-flag"),
        (["--set", "replay.capacity=10000000000"], "the replay memory needs"),
        (["--seed", "4294967296"], "run.seed"),
        (["--set", "learner.hidden=64,100000"], "learner.hidden"),
        (["--set", "learner.gamma=0.9"], "'algorithm.gamma'"),
        (["--set", "stop.max_seconds=1e12"], "stop.max_seconds"),
        (["--set", f"cluster.storage={tmp_path / 'afile'}"], "cluster.storage"),
        ([], "D3Q_FAULTS: unknown fault 'bogus'"),
    ]:
        env = {"D3Q_FAULTS": "bogus=1"} if not args else None
        w = Watched(["--no-ui", "--run-dir", str(tmp_path / "r"), *args], env=env)
        t0 = time.monotonic()
        code, out, err = w.wait(timeout=60)
        assert code == 2, (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], (args, err)
        assert "Traceback" not in err
        assert not (tmp_path / "r").exists()  # nothing written for a rejected run
        report(" ".join(args).replace(str(tmp_path), "TMP") or "D3Q_FAULTS=bogus=1",
               time.monotonic() - t0, exit=code, error=lines[0].replace(str(tmp_path), "TMP"))


@pytest.mark.timeout(120)
def test_markup_in_paths_and_log_lines_is_shown_as_written(tmp_path):
    run_dir = tmp_path / "a[/]b [bold]x"
    w = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--set", "stop.goal=10000",
                 "--set", "stop.max_learner_samples=2000"])
    code, out, err = w.wait(timeout=100)
    assert code == 1, (out, err)
    assert "Traceback" not in out + err and "MarkupError" not in out + err
    assert json.loads((run_dir / "result.json").read_text())["exit_code"] == 1
    assert str(run_dir) in out.replace("\n", "")  # the log line naming it, as written
