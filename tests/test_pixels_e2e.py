"""End to end from pixels: a short headless run on MinAtar and on Atari leaves a complete
run directory (result.json without a goal, a checkpoint of the CNN, TensorBoard events) and
no process behind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from d3q_core.storage.checkpoint import read_policy
from tests.helpers import Watched
from tests.test_rundir import read_events

pytest.importorskip("ale_py")
pytest.importorskip("minatar")

SMALL = [
    "--set", "stop.max_seconds=20",
    "--set", "replay.capacity=4000",
    "--set", "simulators.envs_per_simulator=4",
    "--set", "evaluation.every_learner_samples=500",
    "--set", "learner.checkpoint_seconds=5",
]
CASES = {
    "MinAtar/Breakout-v1": ["--set", "learner.batch_size=32", "--set", "replay.min_size=300",
                            "--set", "evaluation.episodes=4"],
    "ALE/Pong-v5": ["--set", "learner.batch_size=8", "--set", "replay.min_size=200",
                    "--set", "evaluation.episodes=1",
                    "--set", "env.kwargs.max_num_frames_per_episode=2000"],
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("env_id", list(CASES))
def test_a_short_run_from_pixels(tmp_path, env_id):
    run_dir = tmp_path / "run"
    w = Watched(["--no-ui", "--env", env_id, "--run-dir", str(run_dir), *SMALL,
                 *CASES[env_id]])
    code, out, err = w.wait(timeout=150)
    assert code == 1, (out, err)  # no goal: the time limit ends the run
    assert w.survivors() == []
    result = json.loads((run_dir / "result.json").read_text())
    assert result["stop_reason"] == "max_seconds" and result["goal"] is None
    assert result["solved"] is False and result["exit_code"] == 1
    assert result["learner_samples"] > 0 and result["env_steps"] > 0
    assert result["evals"], "no evaluation ran"
    assert "no goal" in out
    ckpt = sorted((run_dir / "checkpoints").glob("ckpt-*.npz"))[-1]
    spec, flat, _ = read_policy(ckpt)
    assert spec.conv and flat.size == spec.n_params and np.isfinite(flat).all()
    assert spec.conv and spec.obs_shape == ((4, 84, 84) if env_id.startswith("ALE")
                                            else (10, 10, 4))
    tags = {v.tag for event in read_events(run_dir / "tb") for v in event.summary.value}
    assert {"eval/mean_return", "replay/size", "learner/loss"} <= tags
