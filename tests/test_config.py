"""Configuration: defaults, TOML files, --set overrides, validation and the TOML round trip."""

from __future__ import annotations

import dataclasses

import pytest

from d3q_core.config import (
    Config,
    ConfigError,
    apply_override,
    build_config,
    from_dict,
    load_toml,
    to_toml,
    validate,
)


def test_defaults_validate_and_cover_the_keys_the_project_relies_on():
    c = validate(Config())
    for key in ("stop.max_seconds", "stop.max_learner_samples", "stop.max_env_steps", "stop.goal",
                "simulators.count", "simulators.envs_per_simulator", "learner.devices",
                "learner.batch_size", "replay.capacity", "replay.alpha", "replay.beta",
                "replay.samples_per_insert", "evaluation.episodes", "env.id"):
        section, name = key.split(".")
        assert hasattr(getattr(c, section), name), key
    assert c.env.id == "CartPole-v1"
    assert c.stop.goal is None  # the env's reward_threshold


def test_toml_round_trip_gives_an_equal_object(tmp_path):
    c = build_config(None, ["learner.hidden=64,32", "stop.goal=480", "replay.alpha=0.5",
                            "run.tensorboard=false", "learner.devices=cpu:2"])
    path = tmp_path / "config.toml"
    path.write_text(to_toml(c))
    back = from_dict(load_toml(path))
    assert back == c
    assert back.learner.hidden == (64, 32)
    assert back.stop.goal == 480.0


def test_round_trip_without_goal_keeps_none(tmp_path):
    c = Config()
    path = tmp_path / "c.toml"
    path.write_text(to_toml(c))
    assert from_dict(load_toml(path)) == validate(Config())


def test_file_then_overrides(tmp_path):
    f = tmp_path / "my.toml"
    f.write_text('[replay]\ncapacity = 5000\nmin_size = 100\n[env]\nid = "Acrobot-v1"\n')
    c = build_config(f, ["replay.capacity=6000"])
    assert c.replay.capacity == 6000 and c.replay.min_size == 100 and c.env.id == "Acrobot-v1"


@pytest.mark.parametrize(
    "assignment, fragment",
    [
        ("replay.capacity=-5", "replay.capacity = -5: must be >= 1"),
        ("replay.capacity=lots", "replay.capacity = 'lots': expected an integer"),
        ("replay.alpha=1.5", "replay.alpha = 1.5: must be <= 1.0"),
        ("learner.learning_rate=0", "learner.learning_rate = 0.0: must be > 0.0"),
        ("learner.devices=tpu", "learner.devices = 'tpu': must match"),
        ("learner.hidden=64,0", "learner.hidden = [64, 0]: every item must be >= 1"),
        ("learner.dueling=maybe", "learner.dueling = 'maybe': expected true or false"),
        ("simulators.epsilon_per=world", "simulators.epsilon_per = 'world': must be one of"),
        ("replay.nope=1", "unknown key 'replay.nope'"),
        ("nope.key=1", "unknown section 'nope'"),
        ("replay.capacity", "expected section.key=value"),
        ("stop.max_seconds=inf", "stop.max_seconds = inf: must be finite"),
        ("cluster.backend=slurm", "cluster.backend = 'slurm': must be one of"),
        ("cluster.address=myhost", "cluster.address = 'myhost': must match"),
        ("cluster.simulator_resources={sim = -1}",
         "cluster.simulator_resources.sim = -1: expected a number > 0"),
        ("cluster.learner_resources={gpu_box = true}",
         "cluster.learner_resources.gpu_box = True: expected a number > 0"),
        ("cluster.learner_resources={GPU = 1}",
         "cluster.learner_resources.GPU = 1: built into Ray"),
        ("cluster.simulator_resources={CPU = 1}",
         "cluster.simulator_resources.CPU = 1: built into Ray"),
        ('cluster.replay_resources={"" = 1}',
         "cluster.replay_resources. = 1: an empty name"),
    ],
)
def test_bad_overrides_fail_with_one_line_naming_the_key(assignment, fragment):
    with pytest.raises(ConfigError) as err:
        build_config(None, [assignment])
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="replay.min_size = 200: must be <= replay.capacity"):
        build_config(None, ["replay.capacity=100", "replay.min_size=200"])
    with pytest.raises(ConfigError, match="stop.stall_stop_seconds"):
        build_config(None, ["stop.stall_warn_seconds=30", "stop.stall_stop_seconds=10"])


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[replay\ncapacity = 1", "malformed TOML"),
        ('[replay]\ncapacity = "big"\n', "replay.capacity = 'big': expected an integer"),
        ("[replay]\nunknown = 1\n", "unknown key 'replay.unknown'"),
        ("[learner]\nhidden = [64, true]\n", "learner.hidden"),
        ("replay = 3\n", "replay"),
        ("[physics]\ng = 9.8\n", "unknown section 'physics'"),
    ],
)
def test_bad_files_name_the_file_or_key(tmp_path, text, fragment):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        build_config(f)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nowhere.toml: config file not found"):
        build_config(tmp_path / "nowhere.toml")


def test_override_parses_to_field_types():
    c = Config()
    apply_override(c, "stop.goal=none")
    apply_override(c, "replay.capacity=1_000_000")
    apply_override(c, "simulators.warmup_random=off")
    apply_override(c, "learner.hidden=[256, 256]")
    assert c.stop.goal is None and c.replay.capacity == 1_000_000
    assert c.simulators.warmup_random is False and c.learner.hidden == (256, 256)


def test_every_field_has_validation_or_a_type_and_a_default():
    c = Config()
    for section in dataclasses.fields(c):
        for f in dataclasses.fields(getattr(c, section.name)):
            assert f.default is not dataclasses.MISSING or f.default_factory is not None


@pytest.mark.parametrize("old", ["learner.gamma", "learner.n_step"])
def test_a_moved_key_names_its_new_place(old, tmp_path):
    new = "algorithm." + old.split(".")[1]
    with pytest.raises(ConfigError, match=f"'{old}' is now '{new}'"):
        build_config(None, [f"{old}=3"])
    path = tmp_path / "old.toml"
    path.write_text(f"[learner]\n{old.split('.')[1]} = 3\n")
    with pytest.raises(ConfigError, match=f"'{old}' in {path} is now '{new}'"):
        build_config(path)


def test_a_run_directorys_old_config_is_read_with_the_keys_where_they_are_now(tmp_path):
    from d3q_core.storage.rundir import RunDir

    (tmp_path / "config.toml").write_text("[learner]\ngamma = 0.9\nn_step = 5\n")
    c = RunDir.open_existing(tmp_path).read_config()
    assert (c.algorithm.gamma, c.algorithm.n_step) == (0.9, 5)
    assert not hasattr(c.learner, "gamma")


def test_the_ray_backend_without_its_extra_is_one_line_naming_the_extra(monkeypatch):
    import sys

    from d3q_core.algo.qnet import QNetSpec
    from d3q_core.backends import make_backend

    monkeypatch.setitem(sys.modules, "ray", None)  # as if d3q[ray] were not installed
    for name in [m for m in sys.modules if m.startswith("d3q_core.backends.ray.")]:
        monkeypatch.delitem(sys.modules, name)
    config = build_config(None, ["cluster.backend=ray"])
    with pytest.raises(ConfigError, match=r"needs the ray extra \(pip install 'd3q\[ray\]'"):
        make_backend(config, QNetSpec(4, 2, (8,), True), 1)
