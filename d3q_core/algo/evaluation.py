"""Greedy play of a parameter version: the score an evaluation reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from d3q_core.algo.qnet import NumpyQNet
from d3q_core.envs import make_vector_env


def evaluate(qnet: NumpyQNet, env_id: str, episodes: int, seed: int,
             max_steps: int = 100_000, env_kwargs: Mapping[str, Any] | None = None,
             native: bool = True) -> np.ndarray:
    """Returns of `episodes` greedy episodes, one per env copy, played in lock-step
    (`native`: see make_vector_env), as evaluation plays them: raw scores of whole games
    (Atari), capped episodes (MinAtar)."""
    env = make_vector_env(env_id, episodes, seed, env_kwargs, native=native, training=False)
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
