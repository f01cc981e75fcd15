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


def preflight(config: Config) -> None:
    """What can be checked of where the roles will run before anything is made on disk: a
    Ray cluster to join must answer (ConnectionError, one line, else a wrong address would
    wait minutes in Ray's own retries). Nothing for the local backend."""
    cl = config.cluster
    if cl.backend != "ray" or cl.address == "local":
        return
    import socket

    if cl.address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            address = canonicalize_bootstrap_address("auto")
        except ImportError:
            return  # make_backend says which extra is missing
        except (ConnectionError, ValueError) as exc:
            raise ConnectionError(f"cluster.address = 'auto': no Ray cluster on this machine "
                                  f"({str(exc).splitlines()[0][:120]})") from None
        if address is None:
            raise ConnectionError("cluster.address = 'auto': no Ray cluster on this machine "
                                  "(start one with `ray start --head`)")
    else:
        address = cl.address
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3.0).close()
    except OSError as exc:
        raise ConnectionError(f"cluster.address = {cl.address!r}: no Ray cluster answers at "
                              f"{address} ({exc.strerror or exc})") from None
