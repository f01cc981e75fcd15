"""Backends: where a role runs and what its ports are made of."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from d3q_core.algo.qnet import QNetSpec
    from d3q_core.config import Config
    from d3q_core.run.backend import Backend


def make_backend(config: Config, spec: QNetSpec, n_simulators: int, paused: bool = False,
                 output: str | None = None) -> Backend:
    """The backend a run's settings ask for (`cluster.backend`). `output`: where the roles'
    own stdout and stderr go (the run's log.txt)."""
    if config.cluster.backend == "ray":
        try:
            from d3q_core.backends.ray.backend import RayBackend
        except ImportError as exc:
            from d3q_core.config import ConfigError

            raise ConfigError(f"cluster.backend = 'ray': needs the ray extra "
                              f"(pip install 'd3q[ray]'; {exc})") from None
        return RayBackend(config, spec, n_simulators, paused=paused, output=output)
    from d3q_core.backends.local.backend import LocalBackend

    return LocalBackend(config, spec, n_simulators, paused=paused, output=output)
