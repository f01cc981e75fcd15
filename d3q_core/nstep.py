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
        for e in np.flatnonzero(done):
            out.append(self._flush(int(e), next_obs[e], bool(terminated[e])))
            self._count[e] = 0
        if not out:
            return np.empty(0, self.dtype)
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _flush(self, env: int, final_obs: np.ndarray, terminated: bool) -> np.ndarray:
        """All pending steps of one copy whose episode just ended, oldest first."""
        m = int(self._count[env])
        slots = [(self._t - m + i) % self.n for i in range(m)]
        rewards = self._rew[slots, env]
        rec = np.empty(m, self.dtype)
        for i in range(m):
            rest = rewards[i:]
            rec[i]["obs"] = self._obs[slots[i], env]
            rec[i]["action"] = self._act[slots[i], env]
            rec[i]["reward"] = float((self._pows[: rest.size] * rest).sum())
            rec[i]["next_obs"] = final_obs
            rec[i]["discount"] = 0.0 if terminated else self._pows[m - i]
        return rec
