"""`d3q-tui eval`, `export` and `runs` on run directories made here (a checkpoint of random
weights: every figure is compared with the NumPy forward pass, so no training is needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from d3q_core.algo.evaluation import evaluate
from d3q_core.algo.qnet import QNetSpec, init_weights
from d3q_core.config import Config
from d3q_core.exitcodes import EXIT_BAD_INPUT
from d3q_core.policy import load_policy
from d3q_core.storage.checkpoint import save_checkpoint
from d3q_core.storage.rundir import RunDir
from d3q_core.tools.evaluate import evaluate_run
from d3q_core.tools.runs import list_runs
from d3q_tui.cli import main

SPEC = QNetSpec(obs_shape=4, n_actions=2, hidden=(16, 16), dueling=True)


def make_run(root: Path, name: str = "run", samples: int = 5_000, seed: int = 1,
             result: dict | None = None, checkpoint: bool = True) -> Path:
    rd = RunDir.create(root, "CartPole-v1", root / name)
    rd.write_config(Config())
    if checkpoint:
        meta = {"version": 3, "learner_samples": samples, "env_steps": samples // 4,
                "env_id": "CartPole-v1", "spec": SPEC.to_dict()}
        weights = init_weights(SPEC, np.random.default_rng(seed))
        save_checkpoint(rd.checkpoints, {"online": weights}, meta)
    if result is not None:
        rd.result_path.write_text(json.dumps(result))
    return rd.path


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_reports_the_returns_the_evaluator_would(tmp_path, capsys):
    run = make_run(tmp_path)
    code, out, err = run_cli(capsys, "eval", str(run), "--episodes", "6", "--seed", "5")
    assert code == 0, err
    [report_file] = run.glob("eval-*.json")
    report = json.loads(report_file.read_text())
    policy = load_policy(run, "newest")
    expected = evaluate(policy.network, "CartPole-v1", 6, 5, native=False)
    assert report["returns"] == pytest.approx(list(expected))
    assert report["mean"] == pytest.approx(expected.mean())
    assert report["std"] == pytest.approx(expected.std())
    assert (report["min"], report["max"]) == (expected.min(), expected.max())
    assert report["episodes"] == 6 and report["learner_samples"] == 5_000
    assert str(report_file) in out


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_recorded_videos_are_the_evaluated_episodes(tmp_path, fmt):
    import imageio.v3 as iio

    run = make_run(tmp_path)
    report = evaluate_run(run, episodes=4, seed=2, record=tmp_path / "videos",
                          record_episodes=2, video_format=fmt)
    assert report.video_returns == report.returns[:2]  # the same episodes, replayed
    assert [Path(v).name for v in report.videos] == [f"episode-000.{fmt}",
                                                      f"episode-001.{fmt}"]
    for video, ret in zip(report.videos, report.video_returns, strict=True):
        frames = iio.imread(video, index=None)
        assert frames.shape[-1] == 3 and frames.std() > 10  # pictures, not blank
        if fmt == "mp4":  # CartPole pays 1 a step: the first frame, then one a step
            assert frames.shape[0] == int(ret) + 1
        else:  # every 2nd frame, and Pillow merges a frame equal to the one before
            assert 2 <= frames.shape[0] <= (int(ret) + 2) // 2
    assert not list((tmp_path / "videos").glob(".*part*"))  # no temporary files left


def test_eval_without_a_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    run = make_run(tmp_path, checkpoint=False)
    code, _, err = run_cli(capsys, "eval", str(run))
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and "no loadable checkpoint" in err
    assert not list(run.glob("eval-*.json"))


@pytest.mark.parametrize("argv", [
    ["eval", "{run}", "--checkpoint", "best"],  # the run never confirmed a goal
    ["eval", "{run}", "--episodes", "0"],
    ["eval", "{missing}"],
    ["export", "{run}", "--format", "onnx"],
    ["export", "{run}", "--format", "keras", "--out", "{tmp}/model.h5"],
    ["runs", "{missing}"],
])
def test_bad_tool_input_is_one_line_exit_2(tmp_path, capsys, argv):
    run = make_run(tmp_path)
    subst = {"run": str(run), "missing": str(tmp_path / "missing"), "tmp": str(tmp_path)}
    code, _, err = run_cli(capsys, *(a.format(**subst) for a in argv))
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"d3q-tui {argv[0]}: error: ") and err.count("\n") == 1
    assert not (run / "export").exists()


def test_export_keras_and_savedmodel_give_the_numpy_q_values(tmp_path, capsys):
    run = make_run(tmp_path)
    policy = load_policy(run)
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    expected = policy.q_values(obs)
    assert run_cli(capsys, "export", str(run), "--format", "keras")[0] == 0
    assert run_cli(capsys, "export", str(run), "--format", "savedmodel")[0] == 0
    import keras
    import tensorflow as tf

    [keras_file] = (run / "export").glob("*.keras")
    model = keras.saving.load_model(keras_file)
    np.testing.assert_allclose(model.predict(obs, verbose=0), expected, atol=1e-4)
    [saved] = (run / "export").glob("*-savedmodel")
    loaded = tf.saved_model.load(str(saved))
    np.testing.assert_allclose(loaded.serve(tf.constant(obs)).numpy(), expected, atol=1e-4)
    served = loaded.signatures["serving_default"](tf.constant(obs))
    np.testing.assert_allclose(next(iter(served.values())).numpy(), expected, atol=1e-4)
    assert sorted(p.name for p in (run / "export").iterdir()) == sorted(
        [keras_file.name, saved.name])  # nothing half-written beside them


def test_runs_lists_every_run_newest_first_with_its_status(tmp_path, capsys):
    import os

    solved = make_run(tmp_path, "a", result={"stop_reason": "goal", "seconds_to_goal": 9.5,
                                             "best_eval_mean": 500.0,
                                             "confirmed_eval_mean": 498.2})
    limit = make_run(tmp_path, "b", result={"stop_reason": "max_seconds",
                                            "best_eval_mean": 120.0})
    crashed = make_run(tmp_path, "c")  # killed before its result: no result.json
    for age, path in ((300, solved), (200, limit), (100, crashed)):
        t = os.path.getmtime(path / "config.toml") - age
        os.utime(path / "config.toml", (t, t))
    (tmp_path / "not-a-run").mkdir()
    rows = list_runs(tmp_path)
    assert [Path(r.path).name for r in rows] == ["c", "b", "a"]
    assert [r.status for r in rows] == ["incomplete", "limit", "solved"]
    assert rows[2].seconds_to_goal == 9.5 and rows[2].confirmed == 498.2
    code, out, _ = run_cli(capsys, "runs", str(tmp_path))
    assert code == 0
    lines = [line for line in out.splitlines() if "CartPole-v1" in line]
    assert [line.split()[-1] for line in lines] == [str(crashed), str(limit), str(solved)]


def test_a_live_run_is_listed_as_running(tmp_path):
    run = make_run(tmp_path)
    rd = RunDir(run)
    rd.lock()
    try:
        assert [r.status for r in list_runs(tmp_path)] == ["running"]
    finally:
        rd.unlock()
    assert [r.status for r in list_runs(tmp_path)] == ["incomplete"]
