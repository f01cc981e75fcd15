"""A Config built: defaults (or a run's own settings), the env's preset, a TOML file and
`--set` overrides, in that order of precedence from low to high, then validated."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

from d3q_core.config.presets import apply_preset
from d3q_core.config.schema import (
    MOVED_KEYS,
    SECTIONS,
    Config,
    ConfigError,
    field_types,
    known_keys,
)
from d3q_core.config.tomlio import load_toml
from d3q_core.config.values import coerce, parse_text, parse_toml_value, validate


def _initials(name: str) -> str:
    return "".join(word[:1] for word in name.split("_"))


def suggest_key(full: str) -> str | None:
    """The known key a mistyped one most likely meant: same section first (initials as in
    `lr` -> `learning_rate`, a prefix, then a close spelling), then the same name in another
    section, then a close spelling anywhere."""
    known = known_keys()
    section, _, name = full.partition(".")
    same = [k.split(".", 1)[1] for k in known if k.startswith(section + ".")]
    for candidate in same:
        if name and (_initials(candidate) == name or candidate.startswith(name)):
            return f"{section}.{candidate}"
    close = difflib.get_close_matches(name, same, n=1, cutoff=0.6)
    if close:
        return f"{section}.{close[0]}"
    elsewhere = [k for k in known if k.split(".", 1)[1] == name]
    if elsewhere:
        return elsewhere[0]
    names = {k.split(".", 1)[1]: k for k in known}
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.75)
    if close:
        return names[close[0]]
    close = difflib.get_close_matches(full, known, n=1, cutoff=0.75)
    return close[0] if close else None


def unknown_key(full: str, known: typing.Iterable[str], where: str = "") -> ConfigError:
    if full in MOVED_KEYS:
        return ConfigError(f"{full!r}{where} is now {MOVED_KEYS[full]!r}")
    hint = suggest_key(full)
    mean = f"; did you mean {hint!r}?" if hint else ";"
    return ConfigError(f"unknown key {full!r}{where}{mean} known: {', '.join(known)}")


def unknown_section(name: str, where: str = "") -> ConfigError:
    close = difflib.get_close_matches(name, list(SECTIONS), n=1, cutoff=0.6)
    mean = f"; did you mean {close[0]!r}?" if close else ";"
    return ConfigError(f"unknown section {name!r}{where}{mean} known: {', '.join(SECTIONS)}")


def apply_mapping(config: Config, data: dict[str, Any], source: str = "") -> Config:
    """Apply nested {section: {key: value}} onto config; unknown keys fail by name."""
    where = f" in {source}" if source else ""
    for sname, values in data.items():
        if sname not in SECTIONS:
            raise unknown_section(sname, where)
        if not isinstance(values, dict):
            raise ConfigError(f"{sname}{where}: expected a table of settings")
        section = getattr(config, sname)
        types_ = field_types(type(section))
        for key, value in values.items():
            full = f"{sname}.{key}"
            if key not in types_:
                raise unknown_key(full, types_, where)
            setattr(section, key, coerce(full, value, types_[key]))
    return config


def apply_override(config: Config, assignment: str) -> str:
    """Apply one `section.key=value` override, parsing value to the field's type; returns
    the key it set."""
    if "=" not in assignment:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    key, text = assignment.split("=", 1)
    key = key.strip()
    if "." not in key:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    sname, fname = key.split(".", 1)
    if sname not in SECTIONS:
        raise unknown_section(sname, f" in --set {key}")
    section = getattr(config, sname)
    types_ = field_types(type(section))
    table, _, name = fname.partition(".")
    if name and typing.get_origin(types_.get(table)) is dict:  # env.kwargs.NAME=VALUE
        getattr(section, table)[name] = parse_toml_value(key, text)
        return f"{sname}.{table}"
    if fname not in types_:
        raise unknown_key(key, types_)
    setattr(section, fname, parse_text(key, text, types_[fname]))
    return key


def build_config(
    config_file: str | Path | None = None,
    overrides: typing.Iterable[str] = (),
    base: Config | None = None,
) -> Config:
    """Defaults, the env's preset, the file, then the overrides; validated. With `base` (a
    run's own config.toml, already resolved) no preset is applied again."""
    config = base if base is not None else Config()
    user_keys: set[str] = set()
    if config_file is not None:
        data = load_toml(config_file)
        apply_mapping(config, data, source=str(config_file))
        user_keys |= {f"{s}.{k}" for s, table in data.items() for k in table}
    for assignment in overrides:
        user_keys.add(apply_override(config, assignment))
    if base is None:
        apply_preset(config, user_keys)
    return validate(config)


def from_dict(data: dict[str, Any]) -> Config:
    """A Config from a mapping taken as it is (a run's own settings: no preset)."""
    return validate(apply_mapping(Config(), data))
