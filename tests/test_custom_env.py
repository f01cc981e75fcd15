"""Custom envs by import path, with env.kwargs reaching every process that makes the env."""

from __future__ import annotations

import json

import pytest

from d3q_core.config import ConfigError, build_config, to_toml
from d3q_core.envs import EnvError, inspect_env, make_vector_env
from tests.helpers import TINY, Watched

MATCHBIT = "tests.envs.matchbit:MatchBit-v0"


def test_import_path_and_kwargs_reach_the_env():
    info = inspect_env(MATCHBIT, {"length": 5})
    assert (info.obs_dim, info.n_actions, info.reward_threshold) == (2, 2, 9.0)
    env = make_vector_env(MATCHBIT, 3, seed=1, kwargs={"length": 5})
    try:
        env.reset(seed=1)
        for _ in range(5):
            _, _, _, trunc, _ = env.step([0, 1, 0])
        assert trunc.all()  # five steps: the kwarg reached every copy
    finally:
        env.close()


@pytest.mark.parametrize("env_id, kwargs, field", [
    ("no_such_module_d3q:Thing-v0", None, "cannot import 'no_such_module_d3q'"),
    (MATCHBIT, {"nope": 1}, "env.kwargs = {'nope': 1}: tests.envs.matchbit:MatchBit-v0 rejects"),
])
def test_bad_custom_env_is_one_line(env_id, kwargs, field):
    with pytest.raises(EnvError) as err:
        inspect_env(env_id, kwargs)
    assert field in str(err.value) and "\n" not in str(err.value)


def test_kwargs_from_set_and_toml_round_trip():
    c = build_config(None, ["env.kwargs.length=20", "env.kwargs.flip=true",
                            "env.kwargs.render_mode=rgb_array", 'env.kwargs.tag="a b"'])
    assert c.env.kwargs == {"length": 20, "flip": True, "render_mode": "rgb_array",
                            "tag": "a b"}
    import tomllib

    from d3q_core.config import from_dict
    assert from_dict(tomllib.loads(to_toml(c))).env.kwargs == c.env.kwargs
    with pytest.raises(ConfigError, match="env.kwargs.x"):
        build_config(None, ["env.kwargs.x=[1, "])


def test_bad_kwarg_exits_2_before_anything_starts(tmp_path):
    w = Watched(["--no-ui", "--run-dir", str(tmp_path / "run"), "--env", MATCHBIT,
                 "--set", "env.kwargs.speed=3"])
    code, out, err = w.wait(timeout=60)
    assert code == 2 and err.count("\n") == 1 and "env.kwargs" in err, (out, err)
    assert "Traceback" not in err and w.seen == {}  # nothing was spawned
    assert not (tmp_path / "run").exists()


@pytest.mark.timeout(240)
def test_a_custom_env_with_kwargs_trains_to_its_goal(tmp_path):
    """flip=true inverts the rewarded action: the goal (above random play's ~10 of 20) is
    reachable only if the simulators and the evaluator both play the flipped env."""
    run_dir = tmp_path / "run"
    w = Watched(["--no-ui", "--run-dir", str(run_dir), *TINY, "--env", MATCHBIT,
                 "--set", "env.kwargs.flip=true", "--set", "env.kwargs.length=20",
                 "--set", "stop.goal=18", "--set", "stop.max_seconds=150"])
    code, out, err = w.wait(timeout=200)
    assert code == 0, (out, err)
    result = json.loads((run_dir / "result.json").read_text())
    assert result["solved"] and result["confirmed_eval_mean"] >= 18
    assert 'kwargs = {"flip" = true, "length" = 20}' in (run_dir / "config.toml").read_text()
    assert w.survivors() == []
