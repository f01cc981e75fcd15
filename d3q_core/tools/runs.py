"""`d3q-tui runs [DIR]`: the runs under a directory, newest first, read from what each run
directory holds (config.toml, result.json, the lock of a live run), never written."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from d3q_core.config import ConfigError
from d3q_core.storage.rundir import RunDir

STATUS_OF_REASON = {"goal": "solved", "interrupted": "interrupted", "quit": "stopped",
                    "error": "failed", "stalled": "failed"}


@dataclass(frozen=True)
class RunRow:
    started: float  # time.time() of the run's start (a resumed run: its last start)
    env_id: str
    status: str  # solved, limit, failed, interrupted, stopped, running, incomplete
    seconds_to_goal: float | None
    best: float | None
    confirmed: float | None
    path: str

    @property
    def started_text(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started))


def _status(rd: RunDir, result: dict | None) -> str:
    if rd.in_use():
        return "running"
    if result is None:
        return "incomplete"  # killed before it could write its result
    reason = str(result.get("stop_reason"))
    return STATUS_OF_REASON.get(reason, "limit" if reason.startswith("max_") else reason)


def read_run(path: Path) -> RunRow | None:
    """The row of one run directory, or None if it is not one."""
    rd = RunDir(path)
    if not rd.config_path.is_file():
        return None
    try:
        env_id = rd.read_config().env.id
    except (ConfigError, OSError):
        env_id = "?"
    try:
        result = json.loads(rd.result_path.read_text(encoding="utf-8"))
        result = result if isinstance(result, dict) else None
    except (OSError, ValueError):
        result = None
    r = result or {}
    started = rd.config_path.stat().st_mtime  # written at the (last) start
    if isinstance(r.get("wall_seconds"), (int, float)) and not r.get("resumed_from"):
        started = rd.result_path.stat().st_mtime - float(r["wall_seconds"])
    return RunRow(started=started, env_id=env_id, status=_status(rd, result),
                  seconds_to_goal=r.get("seconds_to_goal"), best=r.get("best_eval_mean"),
                  confirmed=r.get("confirmed_eval_mean"), path=str(path))


def list_runs(root: str | Path = "runs") -> list[RunRow]:
    """Every run directory directly under `root` (and `root` itself if it is one), newest
    first."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(2, "no such directory", str(root))
    candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    rows = [row for p in candidates if (row := read_run(p)) is not None]
    return sorted(rows, key=lambda r: r.started, reverse=True)
