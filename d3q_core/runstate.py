"""RunState: everything the orchestrator knows about a run, folded from the processes'
messages, and turned into Snapshots for the faces and scalars for TensorBoard."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from d3q_core import snapshot as snap
from d3q_core.snapshot import (
    DeviceStats,
    EvalPoint,
    LearnerStats,
    LogLine,
    ProcessStats,
    ReplayStats,
    Snapshot,
)

LOG_KEEP = 200


@dataclass
class Confirmation:
    version: int
    learner_samples: int
    env_steps: int
    mean: float
    min: float
    weights: Any


@dataclass
class RunState:
    env_id: str
    run_dir: str
    goal: float
    started_at: float  # time.time() of the command's start
    latest: dict[tuple[str, int], dict] = field(default_factory=dict)
    evals: list[EvalPoint] = field(default_factory=list)
    confirmation: Confirmation | None = None
    goal_eval: EvalPoint | None = None
    last_checkpoint: str | None = None
    learner_info: dict = field(default_factory=dict)
    phase: str = snap.PHASE_STARTING
    stop_reason: str | None = None
    stall: str | None = None
    log_lines: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_KEEP))
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    log_sink: Any = None  # callable(str) appending to log.txt

    def elapsed(self) -> float:
        return time.time() - self.started_at

    def log(self, text: str, level: str = "info") -> None:
        with self._lock:
            self._seq += 1
            line = LogLine(self._seq, self.elapsed(), level, text)
            self.log_lines.append(line)
        if self.log_sink is not None:
            self.log_sink(f"{line.elapsed:8.1f}s {level:7s} {text}")

    def stats(self, role: str, index: int = 0) -> dict:
        return self.latest.get((role, index), {})

    @property
    def best_eval(self) -> float | None:
        return max((e.mean for e in self.evals), default=None)

    def add_eval(self, payload: dict) -> EvalPoint:
        point = EvalPoint(
            learner_samples=int(payload["learner_samples"]),
            env_steps=int(payload["env_steps"]),
            version=int(payload["version"]),
            mean=float(payload["mean"]),
            max=float(payload["max"]),
            min=float(payload["min"]),
            elapsed=self.elapsed(),
        )
        self.evals.append(point)
        return point

    def snapshot(self, *, devices: DeviceStats, processes: tuple[ProcessStats, ...],
                 env_steps: int, env_steps_per_s: float, episodes: int, paused: bool,
                 tensorboard_url: str | None = None) -> Snapshot:
        sims = [v for (role, _), v in self.latest.items() if role == "simulator"]
        returns = [s["mean_return"] for s in sims if s.get("mean_return") is not None]
        r = self.stats("replay")
        lr = self.stats("learner")
        with self._lock:
            log = tuple(self.log_lines)
        return Snapshot(
            elapsed=self.elapsed(),
            phase=self.phase,
            env_id=self.env_id,
            run_dir=self.run_dir,
            goal=self.goal,
            stop_reason=self.stop_reason,
            paused=paused,
            env_steps=env_steps,
            env_steps_per_s=env_steps_per_s,
            episodes=episodes,
            mean_train_return=sum(returns) / len(returns) if returns else math.nan,
            devices=devices,
            processes=processes,
            replay=ReplayStats(
                size=r.get("size", 0),
                capacity=r.get("capacity", 0),
                insert_rate=r.get("insert_rate", 0.0),
                sample_rate=r.get("sample_rate", 0.0),
                inserted=r.get("inserted", 0),
                sampled=r.get("sampled", 0),
                total_priority=r.get("total_priority", 0.0),
                max_priority=r.get("max_priority", 0.0),
                mean_priority=r.get("mean_priority", 0.0),
                histogram=r.get("histogram", ()),
                bin_edges=r.get("bin_edges", ()),
                beta=r.get("beta", 0.0),
                dropped=r.get("dropped", 0),
            ),
            learner=LearnerStats(
                samples=lr.get("samples", 0),
                steps=lr.get("steps", 0),
                samples_per_s=lr.get("samples_per_s", 0.0),
                loss=lr.get("loss", math.nan),
                mean_q=lr.get("mean_q", math.nan),
                replicas=self.learner_info.get("replicas", 0),
                param_version=lr.get("version", 0),
                wait_fraction=lr.get("wait_fraction", 0.0),
            ),
            evals=tuple(self.evals),
            best_eval=self.best_eval,
            confirmed_eval=self.confirmation.mean if self.confirmation else None,
            stall=self.stall,
            log=log,
            tensorboard_url=tensorboard_url,
        )

    def tensorboard_scalars(self) -> dict[str, float]:
        """The learning curve's companions, logged against learner samples."""
        out: dict[str, float] = {}
        lr, r = self.stats("learner"), self.stats("replay")
        for key, tag in (("loss", "learner/loss"), ("mean_q", "learner/mean_q"),
                         ("samples_per_s", "learner/samples_per_s"),
                         ("wait_fraction", "learner/wait_fraction")):
            if key in lr and math.isfinite(lr[key]):
                out[tag] = float(lr[key])
        if r:
            out["replay/size"] = float(r.get("size", 0))
            out["replay/beta"] = float(r.get("beta", 0.0))
        return out
