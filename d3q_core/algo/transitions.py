"""The transition record shared by simulators, the replay memory and the learner."""

from __future__ import annotations

import numpy as np


def transition_dtype(obs_shape: int | tuple[int, ...], obs_dtype: str | np.dtype = np.float32
                     ) -> np.dtype:
    """One n-step transition: reward is the discounted n-step return, discount is gamma^n,
    or 0 where the episode truly terminated inside the n steps (no bootstrap). Observations
    are float32 vectors, or uint8 stacks of frames (image envs: the learner makes them
    float inside its compiled step)."""
    shape = (int(obs_shape),) if np.isscalar(obs_shape) else tuple(int(d) for d in obs_shape)
    return np.dtype(
        [
            ("obs", obs_dtype, shape),
            ("action", np.int32),
            ("reward", np.float32),
            ("next_obs", obs_dtype, shape),
            ("discount", np.float32),
        ]
    )


# what a pixel simulator sends: the transitions with frame references for observations
# (d3q_core.algo.framestreams), the frames beside them, each once
REF_DTYPE = transition_dtype(1, np.int64)


def record_dtype(spec) -> np.dtype:  # noqa: ANN001 - a QNetSpec (qnet imports nothing here)
    """The records the replay samples and the learner trains on for this network: uint8
    stacks of frames for a convolutional network, float32 vectors for an MLP."""
    return transition_dtype(spec.obs_shape, np.uint8 if spec.conv else np.float32)
