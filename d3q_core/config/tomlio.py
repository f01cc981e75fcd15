"""Settings as TOML: a user's file read (errors name the file) and a resolved Config written
back, as a run directory's config.toml and `--print-config` show it."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from d3q_core.config.schema import SECTIONS, Config, ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a mapping, with a one-line error naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config file ({exc.__class__.__name__})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: malformed TOML: {exc}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table, keys quoted: any string is a key
        return "{" + ", ".join(f"{_toml_value(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")  # pragma: no cover


def to_toml(config: Config) -> str:
    """The whole configuration as TOML; None values are left out (TOML has no null)."""
    lines: list[str] = ["# d3q run configuration (resolved: defaults, preset, file and overrides)"]
    for sname in SECTIONS:
        lines.append(f"\n[{sname}]")
        section = getattr(config, sname)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if value is not None:
                lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    return dataclasses.asdict(config)

