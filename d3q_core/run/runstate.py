"""RunState: everything the orchestrator knows about a run, folded from the roles' messages,
and turned into Snapshots for the faces and scalars for TensorBoard."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from d3q_core import snapshot as snap
from d3q_core.roles.messages import Confirmed, EvalResult, LearnerReady, SimulatorStats
from d3q_core.run.evalhistory import EvalHistory
from d3q_core.snapshot import (
    DeviceStats,
    EvalPoint,
    LearnerStats,
    LogLine,
    ProcessStats,
    ReplayStats,
    Snapshot,
    combine_replay,
)

LOG_KEEP = 200


@dataclass
class RunState:
    env_id: str
    run_dir: str
    goal: float
    started_at: float  # time.time() of the command's start
    latest: dict[tuple[str, int], Any] = field(default_factory=dict)  # newest stats message
    evals: EvalHistory = field(default_factory=EvalHistory)
    confirmation: Confirmed | None = None
    goal_eval: EvalPoint | None = None
    last_checkpoint: str | None = None
    learner_info: LearnerReady | None = None
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

    def stats(self, role: str, index: int = 0) -> Any:
        """The newest stats message of a role, or None before its first."""
        return self.latest.get((role, index))

    def replay_stats(self) -> ReplayStats | None:
        """The replay memory, its shards taken together; None before its first stats."""
        shards = [v for (role, _), v in sorted(self.latest.items()) if role == "replay"]
        return combine_replay(shards) if shards else None

    @property
    def replay(self) -> ReplayStats:
        return self.replay_stats() or ReplayStats()

    @property
    def learner(self) -> LearnerStats:
        return self.latest.get(("learner", 0)) or LearnerStats()

    def simulators(self) -> list[SimulatorStats]:
        return [v for (role, _), v in self.latest.items() if role == "simulator"]

    @property
    def best_eval(self) -> float | None:
        return self.evals.best

    def add_eval(self, r: EvalResult) -> EvalPoint:
        point = EvalPoint(learner_samples=r.learner_samples, env_steps=r.env_steps,
                          version=r.version, mean=r.mean, max=r.max, min=r.min,
                          elapsed=self.elapsed())
        self.evals.add(point)
        return point

    def snapshot(self, *, devices: DeviceStats, processes: tuple[ProcessStats, ...],
                 env_steps: int, env_steps_per_s: float, episodes: int, paused: bool,
                 tensorboard_url: str | None = None) -> Snapshot:
        returns = [s.mean_return for s in self.simulators() if s.mean_return is not None]
        learner = self.learner
        if self.learner_info is not None:
            learner = replace(learner, replicas=self.learner_info.replicas)
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
            replay=self.replay,
            learner=learner,
            evals=self.evals.points(),
            eval_count=self.evals.count,
            best_eval=self.best_eval,
            confirmed_eval=self.confirmation.mean if self.confirmation else None,
            stall=self.stall,
            log=log,
            tensorboard_url=tensorboard_url,
        )

    def tensorboard_scalars(self) -> dict[str, float]:
        """The learning curve's companions (the training episodes' return among them)."""
        out: dict[str, float] = {}
        returns = [s.mean_return for s in self.simulators() if s.mean_return is not None]
        if returns:  # each simulator's last 100 ended episodes, the Ape-X epsilons mixed
            out["train/episode_return"] = float(sum(returns) / len(returns))
        lr = self.stats("learner")
        if lr is not None:
            for tag, value in (("learner/loss", lr.loss), ("learner/mean_q", lr.mean_q),
                               ("learner/samples_per_s", lr.samples_per_s),
                               ("learner/wait_fraction", lr.wait_fraction)):
                if math.isfinite(value):
                    out[tag] = float(value)
        r = self.replay_stats()
        if r is not None:
            out["replay/size"] = float(r.size)
            out["replay/beta"] = float(r.beta)
        return out
