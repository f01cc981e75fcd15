"""Tuned settings per env, rl-zoo style: applied when the run's env matches (or
`run.preset` names one) to every key the user has not set, and logged at the start of the run.

The defaults are tuned for CartPole-v1 on a 2-core machine; a preset holds only what another
env needs beyond them, each entry with the reason it has that value (BENCHMARKS.md, "suite",
has the runs behind them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from d3q_core.config.schema import Config, ConfigError


@dataclass(frozen=True)
class Preset:
    name: str  # the env id it is for
    why: str  # one line: what the env needs beyond the defaults
    settings: dict[str, Any] = field(default_factory=dict)  # "section.key": value


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("CartPole-v1", "the defaults are tuned for it"),
)}


def bare_env_id(env_id: str) -> str:
    """`my_pkg.envs:MyEnv-v0` -> `MyEnv-v0`, as gymnasium registers it."""
    return env_id.split(":", 1)[-1]


def choose(config: Config) -> Preset | None:
    """The preset `run.preset` selects for this config's env, or None."""
    name = config.run.preset
    if name == "none":
        return None
    if name == "auto":
        return PRESETS.get(bare_env_id(config.env.id))
    if name not in PRESETS:
        raise ConfigError(f"run.preset = {name!r}: unknown preset; known: auto, none, "
                          + ", ".join(PRESETS))
    return PRESETS[name]


def apply_preset(config: Config, user_keys: set[str]) -> Preset | None:
    """Set the chosen preset's values on the keys not in user_keys; run.preset then records
    which preset it was ("none" where there was none)."""
    preset = choose(config)
    config.run.preset = preset.name if preset else "none"
    if preset is None:
        return None
    for key, value in preset.settings.items():
        if key not in user_keys:
            section, name = key.split(".", 1)
            setattr(getattr(config, section), name, value)
    return preset


def describe_preset(config: Config) -> str | None:
    """The log line of the preset a resolved config carries: its reason and the settings of
    it the run uses (those the user did not set otherwise)."""
    preset = PRESETS.get(config.run.preset)
    if preset is None:
        return None
    used = [f"{k} = {v!r}" for k, v in preset.settings.items()
            if getattr(getattr(config, k.split(".")[0]), k.split(".")[1]) == v]
    return f"preset {preset.name}: {preset.why}" + (f" ({', '.join(used)})" if used else "")
