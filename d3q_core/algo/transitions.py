"""The transition record shared by simulators, the replay memory and the learner."""

from __future__ import annotations

import numpy as np


def transition_dtype(obs_dim: int) -> np.dtype:
    """One n-step transition: reward is the discounted n-step return, discount is gamma^n,
    or 0 where the episode truly terminated inside the n steps (no bootstrap)."""
    return np.dtype(
        [
            ("obs", np.float32, (obs_dim,)),
            ("action", np.int32),
            ("reward", np.float32),
            ("next_obs", np.float32, (obs_dim,)),
            ("discount", np.float32),
        ]
    )
