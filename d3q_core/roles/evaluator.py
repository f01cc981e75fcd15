"""Evaluator role: greedy evaluation of published parameter versions, apart from the learner
and the simulators so that neither the training nor the data stream ever waits for it.

Each evaluation plays `episodes` episodes at once (one per env copy, seeded apart from
training). A mean at the goal is re-checked on `recheck_episodes` more before it counts; then
the same weights are played again on `confirm_episodes` fresh episodes: the confirmed score
says whether the crossing holds.
"""

from __future__ import annotations

import time

import numpy as np

from d3q_core.algo.evaluation import evaluate
from d3q_core.algo.qnet import NumpyQNet, QNetSpec
from d3q_core.config import Config
from d3q_core.roles.messages import Confirmed, EvalResult, ParamMeta
from d3q_core.roles.ports import EvaluatorPorts


class Evaluator:
    """Evaluates each version `evaluation.every_learner_samples` apart, from
    `start_after_samples` on (a resumed run does not re-evaluate what it had)."""

    def __init__(self, cfg: Config, spec: QNetSpec, goal: float, start_after_samples: int = 0):
        self.cfg, self.goal = cfg, goal
        ev = cfg.evaluation
        self.qnet = NumpyQNet(spec)
        self.version, self.count = 0, 0
        self.next_at = max(ev.every_learner_samples, start_after_samples)
        self.base_seed = cfg.run.seed + ev.seed_offset

    def run(self, ports: EvaluatorPorts) -> int:
        while not ports.stop.is_set():
            got = ports.params.read(newer_than=self.version)
            if got is None or got[1].learner_samples < self.next_at:
                time.sleep(0.02)
                continue
            flat, meta = got
            self.version = meta.version
            self.qnet.load(flat)
            result = self.evaluate(meta)
            ports.events.emit(result)
            if result.mean >= self.goal:
                ports.events.emit(self.confirm(flat, meta), wait=True)
                # The run stops now; stay until told so that the message is read.
                ports.stop.wait()
        return 0

    def _play(self, episodes: int, seed: int) -> np.ndarray:
        return evaluate(self.qnet, self.cfg.env.id, episodes, seed,
                        env_kwargs=self.cfg.env.kwargs)

    def evaluate(self, meta: ParamMeta) -> EvalResult:
        ev = self.cfg.evaluation
        seed = self.base_seed + 7919 * self.count
        t0 = time.monotonic()
        returns = self._play(ev.episodes, seed)
        if returns.mean() >= self.goal and ev.recheck_episodes:
            # a crossing is checked on more episodes before it counts: a 32-episode mean
            # crosses by luck now and then, and only near the goal is the extra play spent
            more = self._play(ev.recheck_episodes, seed + 3571)
            returns = np.concatenate([returns, more])
        self.count += 1
        self.next_at = meta.learner_samples + ev.every_learner_samples
        return EvalResult(meta.version, meta.learner_samples, meta.env_steps,
                          float(returns.mean()), float(returns.max()), float(returns.min()),
                          int(returns.size), time.monotonic() - t0)

    def confirm(self, flat: np.ndarray, meta: ParamMeta) -> Confirmed:
        returns = self._play(self.cfg.evaluation.confirm_episodes, self.base_seed - 104729)
        return Confirmed(meta.version, meta.learner_samples, meta.env_steps,
                         float(returns.mean()), float(returns.min()), flat)
