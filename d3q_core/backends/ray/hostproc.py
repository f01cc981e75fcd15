"""The run's side of a private Ray instance's host (host.py): start it, read its address,
stop it. Nothing here imports Ray, so make_backend can start the host before the run imports
Ray itself: the host's start-up (importing Ray, starting the instance: ~4 s here) and the
run's import of Ray (~0.5 s) overlap.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import psutil

from d3q_core.backends.local.process import SINGLE_THREADED_BLAS
from d3q_core.roles.learner import TF_ENVIRONMENT

# single-threaded BLAS (tiny matrices; see backends/local/process.py), TensorFlow quiet, and
# CUDA_VISIBLE_DEVICES left alone: Ray empties it for an actor that reserves no GPU, and the
# learner's `learner.devices = auto` means every GPU of its node (MirroredStrategy)
WORKER_ENV = {**dict.fromkeys(SINGLE_THREADED_BLAS, "1"), **TF_ENVIRONMENT,
              "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}


def start_host(num_cpus: int, dashboard: bool, output: str | None) -> subprocess.Popen:
    """A private instance in a session of its own (see host.py); its workers inherit
    WORKER_ENV, and its output goes to the run's log."""
    err = open(output, "a") if output else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "d3q_core.backends.ray.host", str(num_cpus),
             "dashboard" if dashboard else "no-dashboard"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            env={**os.environ, **WORKER_ENV}, start_new_session=True)
    finally:
        if output:
            err.close()


def host_address(host: subprocess.Popen) -> str:
    """The instance's address; its auth mode becomes this driver's (Ray enables token auth
    for an explicit address only through RAY_AUTH_MODE)."""
    line = host.stdout.readline().strip() if host.stdout else ""
    if not line.startswith("address "):
        raise ConnectionError("cluster.address = 'local': Ray did not start ("
                              f"{line.removeprefix('error ') or 'no address'}; see log.txt)")
    _, address, mode = line.split(" ")
    if mode == "token" and os.environ.get("RAY_AUTH_MODE") != "token":
        # the environment variable alone is read too early (at import); this also refreshes
        # Ray's cached config, as its own ray.init does for a new instance (ray 2.60.0)
        from ray._private.authentication import authentication_token_setup as auth

        auth._enable_token_auth()
    return address


def host_removes(host: subprocess.Popen, path: str) -> None:
    """`path` goes when the host stops, also after a run that was killed."""
    with contextlib.suppress(OSError, ValueError):
        host.stdin.write(f"remove {path}\n")
        host.stdin.flush()


def stop_host(host: subprocess.Popen) -> None:
    """"done": the host stops the instance and leaves."""
    with contextlib.suppress(OSError, ValueError):
        host.stdin.write("done\n")
        host.stdin.close()
    try:
        host.wait(timeout=20)
    except subprocess.TimeoutExpired:  # stuck stopping Ray: it and all it started go
        try:
            tree = [*psutil.Process(host.pid).children(recursive=True)]
        except psutil.Error:
            tree = []
        with contextlib.suppress(OSError):
            os.killpg(host.pid, signal.SIGKILL)  # its own session: pgid == pid
        for p in tree:
            with contextlib.suppress(psutil.Error):
                p.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            host.wait(timeout=5)
