"""A tiny custom env, registered when this module is imported, as a user's own package would
register theirs: `--env tests.envs.matchbit:MatchBit-v0`.

Each step shows a random bit; the action that matches it (or, with `flip=True`, the other
one) earns 1. An episode is `length` steps. A run can only reach a goal above `length / 2`
(random play) under flip if every process that makes the env got the kwarg.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class MatchBit(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, length: int = 10, flip: bool = False, render_mode: str | None = None):
        self.length, self.flip, self.render_mode = int(length), bool(flip), render_mode
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self._bit, self._t = 0, 0

    def _obs(self) -> np.ndarray:
        return np.array([1.0 if self._bit else -1.0, self._t / self.length], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t, self._bit = 0, int(self.np_random.integers(2))
        return self._obs(), {}

    def step(self, action):
        want = 1 - self._bit if self.flip else self._bit
        reward = 1.0 if int(action) == want else 0.0
        self._t += 1
        self._bit = int(self.np_random.integers(2))
        return self._obs(), reward, False, self._t >= self.length, {}

    def render(self):
        frame = np.zeros((40, 40, 3), np.uint8)
        frame[:, :, 1] = 255 * self._bit
        return frame


gym.register("MatchBit-v0", entry_point=MatchBit, reward_threshold=9.0)
