"""Ape-X exploration: actor i of N acts with eps_i = eps^(1 + alpha * i / (N - 1)), so a few
actors explore a lot and most act nearly greedily."""

from __future__ import annotations

import numpy as np

from d3q_core.config import Config


def ape_x_epsilons(base: float, alpha: float, n_actors: int) -> np.ndarray:
    """eps_i = base^(1 + alpha * i / (n - 1)); one actor gets base."""
    if n_actors == 1:
        return np.array([base])
    i = np.arange(n_actors)
    return base ** (1.0 + alpha * i / (n_actors - 1))


def simulator_epsilons(cfg: Config, index: int, n_simulators: int) -> np.ndarray:
    """Epsilon per env copy of simulator `index`: spread over every copy of every simulator
    ("env", Ape-X's per-actor schedule) or one value per simulator ("simulator")."""
    s, k = cfg.simulators, cfg.simulators.envs_per_simulator
    if s.epsilon_per == "simulator":
        return np.full(k, ape_x_epsilons(s.epsilon, s.epsilon_alpha, n_simulators)[index])
    all_eps = ape_x_epsilons(s.epsilon, s.epsilon_alpha, n_simulators * k)
    return all_eps[index * k : (index + 1) * k]
