"""Greedy evaluation of published parameter versions, in its own process so that neither the
learner nor the simulators' data stream ever waits for it.

Each evaluation plays `episodes` episodes at once (one per env copy, seeded apart from
training). When the mean reaches the goal, the same weights are played again on
`confirm_episodes` fresh episodes: the confirmed score says whether the crossing holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from d3q_core.config import Config
from d3q_core.envs import make_vector_env
from d3q_core.params import ParamStore
from d3q_core.proc import EVALUATOR_NICENESS, child_setup, flush_and_exit, send_nowait
from d3q_core.qnet import NumpyQNet, QNetSpec


def evaluate(qnet: NumpyQNet, env_id: str, episodes: int, seed: int,
             max_steps: int = 100_000) -> np.ndarray:
    """Returns of `episodes` greedy episodes, one per env copy, played in lock-step."""
    env = make_vector_env(env_id, episodes, seed)
    try:
        obs, _ = env.reset(seed=seed)
        returns = np.zeros(episodes)
        running = np.ones(episodes, bool)
        for _ in range(max_steps):
            obs, rew, term, trunc, _ = env.step(qnet.act(obs))
            returns += np.where(running, rew, 0.0)
            running &= ~(term | trunc)
            if not running.any():
                break
        return returns
    finally:
        env.close()


@dataclass
class EvaluatorChannels:
    stats: Any  # out: ("eval", ...) and ("confirm", ...) messages
    params: ParamStore
    stop: Any  # Event


def evaluator_main(cfg: Config, spec: QNetSpec, goal: float, ch: EvaluatorChannels,
                   start_after_samples: int = 0) -> None:
    """Process entry point (spawn): evaluate each version `every_learner_samples` apart."""
    child_setup("d3q: evaluator", out_queues=(ch.stats,), niceness=EVALUATOR_NICENESS)
    ev = cfg.evaluation
    qnet = NumpyQNet(spec)
    version, next_at, count = 0, max(ev.every_learner_samples, start_after_samples), 0
    base_seed = cfg.run.seed + ev.seed_offset
    try:
        while not ch.stop.is_set():
            got = ch.params.read(newer_than=version)
            if got is None or got[1].learner_samples < next_at:
                time.sleep(0.02)
                continue
            flat, meta = got
            version = meta.version
            qnet.load(flat)
            t0 = time.monotonic()
            returns = evaluate(qnet, cfg.env.id, ev.episodes, base_seed + 7919 * count)
            if returns.mean() >= goal and ev.recheck_episodes:
                # a crossing is checked on more episodes before it counts: a 32-episode mean
                # crosses by luck now and then, and only near the goal is the extra play spent
                more = evaluate(qnet, cfg.env.id, ev.recheck_episodes,
                                base_seed + 7919 * count + 3571)
                returns = np.concatenate([returns, more])
            count += 1
            next_at = meta.learner_samples + ev.every_learner_samples
            send_nowait(ch.stats, ("eval", "evaluator", 0, {
                "version": meta.version,
                "learner_samples": meta.learner_samples,
                "env_steps": meta.env_steps,
                "mean": float(returns.mean()),
                "max": float(returns.max()),
                "min": float(returns.min()),
                "episodes": int(returns.size),
                "seconds": time.monotonic() - t0,
            }))
            if returns.mean() >= goal:
                confirm = evaluate(qnet, cfg.env.id, ev.confirm_episodes, base_seed - 104729)
                ch.stats.put(("confirm", "evaluator", 0, {
                    "version": meta.version,
                    "learner_samples": meta.learner_samples,
                    "env_steps": meta.env_steps,
                    "mean": float(confirm.mean()),
                    "min": float(confirm.min()),
                    "weights": flat,
                }))
                # The orchestrator stops the run; stay until told so the message is read.
                ch.stop.wait()
    except Exception as exc:
        send_nowait(ch.stats, ("fatal", "evaluator", 0, f"{type(exc).__name__}: {exc}"))
        flush_and_exit(1, (ch.stats,))
    flush_and_exit(0, (ch.stats,))
