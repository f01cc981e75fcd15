"""The Python API: `train(config)` is the run `d3q-tui --no-ui` makes (the same processes,
run directory, result.json and exit code), blocking until it ends.

A Config built in Python gets its env's preset (config/presets.py) on every key still at its
default, as the CLI gives it to every key the user did not set; `run.preset = "none"` keeps
the plain defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from d3q_core.config import SECTIONS, Config, ConfigError, from_dict, validate
from d3q_core.config.presets import apply_preset
from d3q_core.run.result import RunResult
from d3q_core.snapshot import Snapshot


def _keys_set(config: Config) -> set[str]:
    """The keys whose value differs from the default: what a Python caller chose."""
    default = Config()
    return {f"{s}.{f.name}" for s in SECTIONS for f in dataclasses.fields(getattr(config, s))
            if getattr(getattr(config, s), f.name) != getattr(getattr(default, s), f.name)}


def resolve(config: Config | Mapping[str, Any] | None) -> Config:
    """A validated copy of `config` (a Config, a {section: {key: value}} mapping, or None for
    the defaults) with its preset applied."""
    if config is None:
        config = Config()
    elif isinstance(config, Mapping):
        config = from_dict(dict(config))
    else:
        config = copy.deepcopy(config)
    apply_preset(config, _keys_set(config))
    return validate(config)


class _LogPrinter:
    """Log lines to stderr as they come (train(log=True))."""

    def __init__(self, then: Callable[[Snapshot], None] | None):
        self.seq, self.then = 0, then

    def __call__(self, s: Snapshot) -> None:
        for line in s.log:
            if line.seq > self.seq:
                self.seq = line.seq
                print(f"{line.elapsed:7.1f}s {line.text}", file=sys.stderr, flush=True)
        if self.then is not None:
            self.then(s)


def train(config: Config | Mapping[str, Any] | None = None, *,
          run_dir: str | Path | None = None, resume: str | Path | None = None,
          on_snapshot: Callable[[Snapshot], None] | None = None,
          log: bool = False) -> RunResult:
    """Run to the goal or a limit and return the result (`.exit_code`, `.solved`,
    `.summary`: what result.json holds). `resume` continues a run directory from its newest
    checkpoint with that run's own settings (then `config` may only change stop.*).
    `on_snapshot` receives what the dashboard shows, a few times a second; `log` prints the
    run's log lines to stderr. SIGINT/SIGTERM/SIGHUP stop the run gracefully (exit code 130
    in the result) when called from the main thread.

    Bad input raises ConfigError, EnvError or RunDirError (ValueError subclasses)."""
    from d3q_core.run.orchestrator import Orchestrator
    from d3q_core.run.signals import graceful_stop

    if resume is not None:
        from d3q_core.config import RESUME_KEYS, RESUME_RULE
        from d3q_core.storage.rundir import RunDir

        cfg = RunDir.open_existing(Path(resume)).read_config()
        if config is not None:
            given = config if isinstance(config, Config) else from_dict(dict(config))
            chosen = _keys_set(given)
            others = sorted(chosen - set(RESUME_KEYS))
            if others:
                raise ConfigError(f"{others[0]}: {RESUME_RULE.replace('--resume', 'resume')}")
            for key in chosen:
                section, name = key.split(".")
                setattr(getattr(cfg, section), name, getattr(getattr(given, section), name))
        cfg = validate(cfg)
    else:
        cfg = resolve(config)
    orch = Orchestrator(cfg, run_dir=Path(run_dir) if run_dir is not None else None,
                        resume=Path(resume) if resume is not None else None)
    callback = _LogPrinter(on_snapshot) if log else on_snapshot
    with graceful_stop(orch):
        result = orch.run(callback)
    result.summary.setdefault("run_dir", str(orch.run_dir))
    return result
