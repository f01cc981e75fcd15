"""n-step return accumulation over K env copies stepped in lock-step.

Each copy keeps its last n steps in a shared ring. On an ordinary step every copy with n steps
of history emits one transition at once (vectorized); when an episode ends, that copy flushes
all its pending steps: a true termination does not bootstrap (discount 0), a time-limit
truncation does, from the final observation, with discount gamma^(steps remaining).
"""

from __future__ import annotations

import numpy as np


class NStepBuffer:
    def __init__(self, n_envs: int, n: int, gamma: float, dtype: np.dtype):
        self.k, self.n, self.gamma, self.dtype = n_envs, n, gamma, dtype
        obs_shape = dtype["obs"].shape
        self._obs = np.zeros((n, n_envs, *obs_shape), np.float32)
        self._act = np.zeros((n, n_envs), np.int32)
        self._rew = np.zeros((n, n_envs), np.float64)
        self._count = np.zeros(n_envs, np.int64)  # pending steps per copy (<= n)
        self._t = 0  # ring position of the next write
        self._pows = gamma ** np.arange(n + 1, dtype=np.float64)
        # _returns[j, i] = gamma^(j - i) for j >= i: rewards @ _returns gives, for every
        # pending step i, the discounted sum of its own and all later rewards
        j, i = np.arange(n)[:, None], np.arange(n)[None, :]
        self._returns = np.where(j >= i, gamma ** np.maximum(j - i, 0), 0.0)

    def reset(self) -> None:
        self._count[:] = 0

    def step(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        valid: np.ndarray,
    ) -> np.ndarray:
        """Push one vector step; returns the transitions completed by it.

        `valid` is False for a copy whose step was an autoreset step (its action was ignored
        and obs -> next_obs spans two episodes): nothing is recorded for it."""
        n, slot = self.n, self._t % self.n
        self._obs[slot] = obs
        self._act[slot] = actions
        self._rew[slot] = rewards
        self._count[valid] += 1
        self._count[~valid] = 0
        self._t += 1

        done = valid & (terminated | truncated)
        full = valid & ~done & (self._count >= n)
        out = []
        if full.any():
            oldest = self._t % n  # == slot of the step n-1 steps ago
            order = (oldest + np.arange(n)) % n
            envs = np.flatnonzero(full)
            rec = np.empty(envs.size, self.dtype)
            rec["obs"] = self._obs[oldest, envs]
            rec["action"] = self._act[oldest, envs]
            rec["reward"] = (self._pows[:n, None] * self._rew[order][:, envs]).sum(axis=0)
            rec["next_obs"] = next_obs[envs]
            rec["discount"] = self._pows[n]
            self._count[envs] = n - 1
            out.append(rec)
        if done.any():
            envs = np.flatnonzero(done)
            out.append(self._flush(envs, next_obs[envs], terminated[envs]))
            self._count[envs] = 0
        if not out:
            return np.empty(0, self.dtype)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _flush(self, envs: np.ndarray, final_obs: np.ndarray, terminated: np.ndarray
               ) -> np.ndarray:
        """All pending steps of the copies whose episodes just ended, each copy's oldest first
        (vectorized over copies and steps: early in training several end on every step)."""
        n = self.n
        m = self._count[envs]  # pending steps per ended copy
        i = np.arange(n)[None, :]
        pending = i < m[:, None]  # [copy, i]: step i of that copy exists
        slots = (self._t - m[:, None] + i) % n  # ring slot of step i
        rewards = np.where(pending, self._rew[slots, envs[:, None]], 0.0)
        returns = rewards @ self._returns
        c, k = np.nonzero(pending)  # row-major: copy by copy, oldest step first
        rec = np.empty(c.size, self.dtype)
        rec["obs"] = self._obs[slots[c, k], envs[c]]
        rec["action"] = self._act[slots[c, k], envs[c]]
        rec["reward"] = returns[c, k]
        rec["next_obs"] = final_obs[c]
        rec["discount"] = np.where(terminated[c], 0.0, self._pows[m[c] - k])
        return rec
