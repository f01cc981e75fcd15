"""How many simulators and learner threads a machine's cores allow."""

from __future__ import annotations

import os

from d3q_core.config import Config


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def simulator_count(cfg: Config, cores: int | None = None) -> int:
    """0 means automatic: the cores not taken by the learner and the replay, at least 1."""
    if cfg.simulators.count > 0:
        return cfg.simulators.count
    return max(1, (cores or usable_cores()) - 2)


def learner_threads(cfg: Config, n_simulators: int, cores: int | None = None) -> int:
    if cfg.learner.threads > 0:
        return cfg.learner.threads
    return max(1, min(4, (cores or usable_cores()) - n_simulators - 1))
