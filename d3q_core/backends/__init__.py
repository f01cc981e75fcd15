"""Backends: where a role runs and what its ports are made of."""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from d3q_core.algo.qnet import QNetSpec
    from d3q_core.config import Config
    from d3q_core.run.backend import Backend


def make_backend(config: Config, spec: QNetSpec, n_simulators: int, paused: bool = False,
                 output: str | None = None) -> Backend:
    """The backend a run's settings ask for (`cluster.backend`). `output`: where the roles'
    own stdout and stderr go (the run's log.txt)."""
    if config.cluster.backend == "ray":
        host = _early_host(config, output)
        try:
            from d3q_core.backends.ray.backend import RayBackend
        except ImportError as exc:
            from d3q_core.config import ConfigError

            if host is not None:
                from d3q_core.backends.ray.hostproc import stop_host

                stop_host(host)
            raise ConfigError(f"cluster.backend = 'ray': needs the ray extra "
                              f"(pip install 'd3q[ray]'; {exc})") from None
        return RayBackend(config, spec, n_simulators, paused=paused, output=output, host=host)
    from d3q_core.backends.local.backend import LocalBackend

    return LocalBackend(config, spec, n_simulators, paused=paused, output=output)


def _early_host(config: Config, output: str | None) -> Any:
    """A private instance's host, started before this process imports Ray (see hostproc.py);
    None when joining a cluster, or when Ray is up in this process already (a test)."""
    ray = sys.modules.get("ray")
    if config.cluster.address != "local" or (ray is not None and ray.is_initialized()):
        return None
    if importlib.util.find_spec("ray") is None:
        return None  # the import below says what to install
    from d3q_core.backends.ray.hostproc import start_host

    return start_host(config.cluster.num_cpus, config.cluster.include_dashboard, output)


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
