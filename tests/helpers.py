"""Shared helpers for subprocess tests: run d3q-tui, watch its process tree."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]

# Small, fast settings: tiny network, short limits, quick evaluation.
TINY = [
    "--set", "learner.hidden=32,32",
    "--set", "learner.batch_size=64",
    "--set", "replay.capacity=5000",
    "--set", "replay.min_size=200",
    "--set", "simulators.envs_per_simulator=4",
    "--set", "evaluation.episodes=4",
    "--set", "evaluation.every_learner_samples=2000",
    "--set", "evaluation.confirm_episodes=8",
    "--set", "learner.checkpoint_seconds=2",
]


def d3q_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "d3q_tui.cli", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["D3Q_FAULT_INJECTION"] = "1"  # these tests inject faults through D3Q_FAULTS
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Watched:
    """A d3q command whose descendants are recorded while it runs, so a test can assert that
    none outlives it."""

    def __init__(self, args: list[str], cwd: Path | None = None, env: dict | None = None,
                 own_group: bool = False, command: list[str] | None = None):
        """`own_group`: a process group of its own (a session), so that a test can signal
        the whole group as `timeout`, systemd or a closed terminal do. `command`: run this
        instead of `d3q-tui args` (a Python script using the API)."""
        self.proc = subprocess.Popen(command or d3q_command(*args), cwd=cwd or REPO,
                                     env={**child_env(), **(env or {})},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=own_group)
        self.seen: dict[int, float] = {}  # pid -> create_time (pids are reused)

    def poll_children(self) -> list[psutil.Process]:
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for k in kids:
            try:
                self.seen[k.pid] = k.create_time()
            except psutil.NoSuchProcess:
                pass
        return kids

    def wait(self, timeout: float) -> tuple[int, str, str]:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.poll_children()
            time.sleep(0.2)
        if self.proc.poll() is None:
            self.kill_all()
            raise TimeoutError(f"d3q-tui did not finish within {timeout}s")
        out, err = self.proc.communicate()
        return self.proc.returncode, out, err

    def survivors(self, grace: float = 5.0) -> list[int]:
        """Recorded descendants still alive after `grace` seconds."""
        deadline = time.monotonic() + grace
        while True:
            alive = []
            for pid, created in self.seen.items():
                try:
                    p = psutil.Process(pid)
                    if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(pid)
                except psutil.NoSuchProcess:
                    pass
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)

    def kill_all(self) -> None:
        for pid in list(self.seen) + [self.proc.pid]:
            try:
                psutil.Process(pid).kill()
            except psutil.NoSuchProcess:
                pass
