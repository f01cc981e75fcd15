"""d3q engine: configuration, roles (simulators, replay, learner) and orchestration.

The Python API is `from d3q_core import Config, train, load_policy` (see api.py and
policy.py). Its names load on first use, so a simulator or the replay importing
`d3q_core.something` stays as light as it was.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {
    "Config": "d3q_core.config",
    "ConfigError": "d3q_core.config",
    "build_config": "d3q_core.config",
    "train": "d3q_core.api",
    "load_policy": "d3q_core.policy",
    "Policy": "d3q_core.policy",
    "evaluate_run": "d3q_core.tools.evaluate",
    "export_policy": "d3q_core.tools.export",
    "list_runs": "d3q_core.tools.runs",
}

__all__ = [*_API, "__version__"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("d3q")
        except PackageNotFoundError:  # a source tree that is not installed
            return "0+unknown"
    if name in _API:
        value = getattr(import_module(_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'd3q_core' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
