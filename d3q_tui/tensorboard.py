"""TensorBoard on a run's logs, bound to 127.0.0.1 on a free port, as a child process that
the dashboard stops (and that dies with it: PR_SET_PDEATHSIG on Linux)."""

from __future__ import annotations

import functools
import importlib.util
import signal
import socket
import subprocess
import sys
from pathlib import Path

from d3q_core.backends.local.process import set_parent_death_signal


def free_port() -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# runs in the child between fork and exec: only a prctl
_die_with_parent = functools.partial(set_parent_death_signal, signal.SIGTERM)


def tensorboard_command(logdir: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
            "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "5"]


class TensorBoardProcess:
    """start/stop/is_alive/pid/url, like the preview window; `command` is for tests."""

    def __init__(self, logdir: Path, log_path: Path | None = None,
                 command: list[str] | None = None):
        self.logdir = Path(logdir)
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.command = command
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if self.command is None and importlib.util.find_spec("tensorboard") is None:
            raise RuntimeError("the tensorboard package is not installed")
        cmd = self.command or tensorboard_command(self.logdir, self.port)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [c.replace("{port}", str(self.port)) for c in cmd],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                preexec_fn=_die_with_parent,  # only a prctl: safe between fork and exec
                start_new_session=True)  # Ctrl-C in the terminal is the dashboard's business
        finally:
            if out is not subprocess.DEVNULL:
                out.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def is_alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)
