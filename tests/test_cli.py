"""Finding one's way: subcommands and their help, --version, --print-config, "did you mean",
and presets applied only where the user left a key alone."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

import pytest

from d3q_core.config import Config, ConfigError, build_config, from_dict, load_toml
from d3q_core.config import presets as presets_mod
from d3q_core.config.presets import Preset, describe_preset
from d3q_core.exitcodes import EXIT_BAD_INPUT
from d3q_tui.cli import main
from d3q_tui.commands.tools import COMMANDS


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's --help and --version
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_top_level_help_lists_every_subcommand_exit_code_and_key(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ")
              and line.split()[0] in {"train", *COMMANDS}}
    assert listed == {"train", *COMMANDS}
    for fragment in ("0 goal reached", "130 interrupted", "dashboard keys", "examples:"):
        assert fragment in out
    assert run_cli(capsys, "train", "--help")[1] == out  # train is the default


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_subcommand_has_its_own_help(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: d3q-tui {command} ")


def test_version_is_the_installed_package_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"d3q-tui {version('d3q')}"


def test_print_config_is_the_resolved_config_as_toml(capsys, tmp_path):
    user = tmp_path / "user.toml"
    user.write_text("[replay]\ncapacity = 4000\n")
    code, out, _ = run_cli(capsys, "--config", str(user), "--seed", "7", "--set",
                           "learner.hidden=64,32", "--print-config")
    assert code == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(out)
    config = from_dict(load_toml(printed))
    assert config == build_config(user, ["run.seed=7", "learner.hidden=64,32"])
    assert (config.replay.capacity, config.run.seed, config.learner.hidden) == (4000, 7, (64, 32))
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("runs*"))


@pytest.mark.parametrize("wrong, meant", [
    ("learner.lr", "learner.learning_rate"),
    ("replay.capcity", "replay.capacity"),
    ("learner.gama", "algorithm.gamma"),
    ("stop.max_second", "stop.max_seconds"),
])
def test_an_unknown_key_names_the_one_meant(capsys, wrong, meant):
    code, _, err = run_cli(capsys, "--set", f"{wrong}=1", "--print-config")
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1
    assert f"did you mean '{meant}'?" in err


def test_an_unknown_section_names_the_one_meant():
    with pytest.raises(ConfigError, match="did you mean 'learner'"):
        build_config(None, ["lerner.batch_size=3"])


def test_no_hint_where_nothing_is_close():
    with pytest.raises(ConfigError) as info:
        build_config(None, ["learner.zzzzzz=3"])
    assert "did you mean" not in str(info.value)


@pytest.fixture
def test_preset(monkeypatch):
    preset = Preset("Acrobot-v1", "test preset", {"learner.learning_rate": 5e-4,
                                                   "replay.capacity": 7_000})
    monkeypatch.setitem(presets_mod.PRESETS, "Acrobot-v1", preset)
    return preset


def test_a_preset_fills_only_the_keys_the_user_left_alone(test_preset, tmp_path):
    user = tmp_path / "user.toml"
    user.write_text("[replay]\ncapacity = 9000\n")
    config = build_config(user, ["env.id=Acrobot-v1"])
    assert config.learner.learning_rate == 5e-4  # from the preset
    assert config.replay.capacity == 9_000  # the user's file wins
    assert config.run.preset == "Acrobot-v1"
    line = describe_preset(config)
    assert line is not None and "learner.learning_rate = 0.0005" in line
    assert "replay.capacity" not in line  # not in use: the user set it
    config = build_config(None, ["env.id=Acrobot-v1", "learner.learning_rate=0.002"])
    assert (config.learner.learning_rate, config.replay.capacity) == (0.002, 7_000)


def test_preset_none_keeps_the_defaults_and_a_name_picks_one(test_preset):
    plain = build_config(None, ["env.id=Acrobot-v1", "run.preset=none"])
    assert plain.learner.learning_rate == Config().learner.learning_rate
    assert plain.run.preset == "none" and describe_preset(plain) is None
    chosen = build_config(None, ["env.id=mypkg:Other-v0", "run.preset=Acrobot-v1"])
    assert chosen.replay.capacity == 7_000
    assert build_config(None, ["env.id=mypkg.envs:Acrobot-v1"]).run.preset == "Acrobot-v1"


def test_an_unknown_preset_is_one_line_exit_2(capsys):
    code, _, err = run_cli(capsys, "--preset", "Nope-v0", "--print-config")
    assert code == EXIT_BAD_INPUT and err.count("\n") == 1 and "run.preset" in err


def test_a_resumed_run_keeps_its_resolved_settings(test_preset):
    first = build_config(None, ["env.id=Acrobot-v1"])
    first.learner.learning_rate = 0.01  # as if a later preset table changed
    again = build_config(None, ["stop.max_seconds=5"], base=first)
    assert again.learner.learning_rate == 0.01  # no preset applied a second time


def test_the_console_script_runs_a_subcommand():
    proc = subprocess.run([sys.executable, "-m", "d3q_tui.cli", "runs", "/nonexistent-dir"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.startswith("d3q-tui runs: error: /nonexistent-dir")


def test_an_env_of_a_missing_extra_names_the_extra(tmp_path):
    script = ("import sys; sys.modules['Box2D'] = None  # as if the extra were not installed\n"
              "from d3q_tui.cli import main\n"
              f"sys.exit(main(['--no-ui', '--env', 'LunarLander-v3', '--run-dir', "
              f"{str(tmp_path / 'r')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.count("\n") == 1 and "pip install 'd3q[box2d]'" in proc.stderr
    assert not (tmp_path / "r").exists()
