"""Every setting of a run: the schema (schema.py), values and their rules (values.py), the
building order (building.py), TOML in and out (tomlio.py) and per-env presets (presets.py)."""

from d3q_core.config.building import (
    apply_mapping,
    apply_override,
    build_config,
    from_dict,
    suggest_key,
)
from d3q_core.config.presets import PRESETS, describe_preset
from d3q_core.config.schema import (
    DAY,
    MOVED_KEYS,
    RESUME_KEYS,
    RESUME_RULE,
    SECTIONS,
    STOP_KEYS,
    AlgorithmConfig,
    ClusterConfig,
    Config,
    ConfigError,
    EnvConfig,
    EvaluationConfig,
    LearnerConfig,
    ReplayConfig,
    RunConfig,
    SimulatorsConfig,
    StopConfig,
    known_keys,
    migrate,
)
from d3q_core.config.tomlio import load_toml, to_dict, to_toml
from d3q_core.config.values import coerce, parse_text, parse_toml_value, validate

__all__ = [
    "DAY", "MOVED_KEYS", "PRESETS", "RESUME_KEYS", "RESUME_RULE", "SECTIONS", "STOP_KEYS",
    "AlgorithmConfig", "ClusterConfig", "Config", "ConfigError", "EnvConfig",
    "EvaluationConfig", "LearnerConfig", "ReplayConfig",
    "RunConfig", "SimulatorsConfig", "StopConfig", "apply_mapping", "apply_override",
    "build_config", "coerce", "describe_preset", "from_dict", "known_keys", "load_toml",
    "migrate", "parse_text", "parse_toml_value", "suggest_key", "to_dict", "to_toml",
    "validate",
]
