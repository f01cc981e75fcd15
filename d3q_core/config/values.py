"""Settings as values: a TOML or `--set` value converted to its field's type, and the rules
(ranges, choices, patterns, cross-field bounds) checked, each failure one line naming the key."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
import typing
from typing import Any

from d3q_core.config.schema import SECTIONS, Config, ConfigError, field_types

# Ray's own resources: an actor asks for them by num_cpus / num_gpus / memory, never by name
# (Ray refuses them in `resources` only when the actor starts, deep in a traceback)
RAY_BUILTIN_RESOURCES = frozenset({"CPU", "GPU", "memory", "object_store_memory"})

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def _describe(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if _is_optional(tp):
        return _describe(_optional_inner(tp)) + " or none"
    if typing.get_origin(tp) is tuple:
        return "a list of integers"
    if typing.get_origin(tp) is dict:
        return "a table"
    return str(tp)


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _optional_inner(tp: Any) -> Any:
    return next(a for a in typing.get_args(tp) if a is not type(None))


def coerce(key: str, value: Any, tp: Any) -> Any:
    """Convert a TOML value to the field's type, or raise a one-line ConfigError."""
    bad = ConfigError(f"{key} = {value!r}: expected {_describe(tp)}")
    if _is_optional(tp):
        if value is None:
            return None
        return coerce(key, value, _optional_inner(tp))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if not math.isfinite(value):
            raise ConfigError(f"{key} = {value!r}: must be finite")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise bad
        if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise bad
        return tuple(value)
    if typing.get_origin(tp) is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise bad
        for k, v in value.items():
            _check_toml_value(f"{key}.{k}", v)
        return dict(value)
    raise bad  # pragma: no cover - every field type is handled above


def _check_toml_value(key: str, value: Any) -> None:
    """A value that can be written back to config.toml (no None, no non-finite float)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_toml_value(f"{key}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_toml_value(key, v)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key} = {value!r}: must be finite")
    elif not isinstance(value, (bool, int, float, str)):
        raise ConfigError(f"{key} = {value!r}: expected a TOML value")


def parse_toml_value(key: str, text: str) -> Any:
    """`--set env.kwargs.NAME=VALUE`: VALUE as TOML (3, 0.5, true, [1, 2], "x"), and a bare
    word that is not TOML as a string (`render_mode=rgb_array`)."""
    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[^\s\[\]{}\"'=,]+", text.strip()):
            return text.strip()
        raise ConfigError(f"{key} = {text!r}: expected a TOML value") from None


def parse_text(key: str, text: str, tp: Any) -> Any:
    """Parse a `--set` value given as text, by the field's type."""
    t = text.strip()
    if _is_optional(tp) and t.lower() in ("none", "null", ""):
        return None
    inner = _optional_inner(tp) if _is_optional(tp) else tp
    try:
        if inner is bool:
            low = t.lower()
            if low in ("true", "yes", "on", "1"):
                return True
            if low in ("false", "no", "off", "0"):
                return False
            raise ValueError
        if inner is int:
            return int(t.replace("_", ""))
        if inner is float:
            return float(t.replace("_", ""))
        if inner is str:
            return t
        if typing.get_origin(inner) is dict:
            value = parse_toml_value(key, t)
            if not isinstance(value, dict):
                raise ValueError
            return value
        if typing.get_origin(inner) is tuple:
            parts = [p for p in re.split(r"[,\s]+", t.strip("[]()")) if p]
            return tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{key} = {text!r}: expected {_describe(tp)}") from None
    raise ConfigError(f"{key}: unsupported type")  # pragma: no cover


def _check_rules(key: str, value: Any, rules: dict[str, Any]) -> None:
    if value is None:
        return
    if "min" in rules and value < rules["min"]:
        raise ConfigError(f"{key} = {value!r}: must be >= {rules['min']}")
    if "max" in rules and value > rules["max"]:
        raise ConfigError(f"{key} = {value!r}: must be <= {rules['max']}")
    if "gt" in rules and value <= rules["gt"]:
        raise ConfigError(f"{key} = {value!r}: must be > {rules['gt']}")
    if "choices" in rules and value not in rules["choices"]:
        allowed = ", ".join(repr(c) for c in rules["choices"])
        raise ConfigError(f"{key} = {value!r}: must be one of {allowed}")
    if "pattern" in rules and not re.fullmatch(rules["pattern"], value):
        raise ConfigError(f"{key} = {value!r}: must match {rules['pattern']}")
    if "item_min" in rules and any(v < rules["item_min"] for v in value):
        raise ConfigError(f"{key} = {list(value)!r}: every item must be >= {rules['item_min']}")
    if "item_max" in rules and any(v > rules["item_max"] for v in value):
        raise ConfigError(f"{key} = {list(value)!r}: every item must be <= {rules['item_max']}")


def validate(config: Config) -> Config:
    """Check every field's type and range, then the rules that span fields."""
    for sname in SECTIONS:
        section = getattr(config, sname)
        types_ = field_types(type(section))
        for f in dataclasses.fields(section):
            key = f"{sname}.{f.name}"
            value = coerce(key, getattr(section, f.name), types_[f.name])
            setattr(section, f.name, value)
            _check_rules(key, value, dict(f.metadata))
    if config.stop.stall_stop_seconds < config.stop.stall_warn_seconds:
        raise ConfigError(
            f"stop.stall_stop_seconds = {config.stop.stall_stop_seconds!r}: "
            f"must be >= stop.stall_warn_seconds ({config.stop.stall_warn_seconds!r})"
        )
    for name in ("simulator", "learner", "replay", "evaluator"):
        for res, amount in getattr(config.cluster, f"{name}_resources").items():
            if res in RAY_BUILTIN_RESOURCES or not res.strip():
                raise ConfigError(f"cluster.{name}_resources.{res} = {amount!r}: "
                                  f"{'an empty name' if not res.strip() else 'built into Ray'}"
                                  "; name a custom resource (GPUs: cluster.learner_gpus; roles "
                                  "take no CPU of their own)")
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
                raise ConfigError(f"cluster.{name}_resources.{res} = {amount!r}: expected a "
                                  "number > 0 (how much of that Ray resource one asks for)")
    shards = config.replay.shards
    if shards > 1 and config.cluster.backend != "ray":
        raise ConfigError(f"replay.shards = {shards}: needs cluster.backend = 'ray' (the local "
                          "backend runs one replay process)")
    if shards > config.replay.capacity:
        raise ConfigError(f"replay.shards = {shards}: must be <= replay.capacity "
                          f"({config.replay.capacity})")
    if config.replay.min_size > config.replay.capacity:
        raise ConfigError(
            f"replay.min_size = {config.replay.min_size}: must be <= replay.capacity "
            f"({config.replay.capacity})"
        )
    return config
