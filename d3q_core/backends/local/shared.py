"""Shared memory for the local backend: the versioned parameter broadcast from the learner to
simulators, evaluator and preview, and the run's monotonic counters.

One writer (the learner) and many readers share a block of memory guarded by a sequence
counter (a seqlock): the writer makes the counter odd, copies, then makes it even; a reader
copies and retries if the counter moved. Nobody ever blocks the learner, and a reader killed
mid-copy cannot leave a lock held.
"""

from __future__ import annotations

import time
from multiprocessing.context import BaseContext

import numpy as np

from d3q_core.roles.messages import ParamMeta

_HEADER = 8  # int64 slots: seq, version, learner_samples, env_steps, publish_ns, spare...


class ParamStore:
    """Shared flat float32 weights with a version; create in the parent, pass to children."""

    def __init__(self, ctx: BaseContext, n_params: int):
        self.n_params = n_params
        self._raw = ctx.RawArray("b", _HEADER * 8 + n_params * 4)
        self._views()

    def _views(self) -> None:
        buf = memoryview(self._raw).cast("B")
        self._header = np.frombuffer(buf, dtype=np.int64, count=_HEADER)
        self._flat = np.frombuffer(buf, dtype=np.float32, count=self.n_params, offset=_HEADER * 8)

    def __getstate__(self) -> dict:
        return {"n_params": self.n_params, "_raw": self._raw}

    def __setstate__(self, state: dict) -> None:
        self.n_params = state["n_params"]
        self._raw = state["_raw"]
        self._views()

    # --- writer -----------------------------------------------------------------------------

    def publish(self, flat: np.ndarray, learner_samples: int, env_steps: int) -> int:
        """Copy new weights in; returns the new version (1, 2, ...)."""
        h = self._header
        version = int(h[1]) + 1
        h[0] += 1  # odd: write in progress
        self._flat[:] = flat
        h[1] = version
        h[2] = learner_samples
        h[3] = env_steps
        h[4] = time.monotonic_ns()
        h[0] += 1  # even: consistent
        return version

    def continue_from(self, version: int) -> None:
        """A resumed run keeps counting versions from its checkpoint."""
        if version > int(self._header[1]):
            self._header[1] = version

    # --- readers ----------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return int(self._header[1])

    def read(self, newer_than: int = 0, retries: int = 1000) -> tuple[np.ndarray, ParamMeta] | None:
        """A consistent copy of the weights if a version newer than `newer_than` exists."""
        h = self._header
        for _ in range(retries):
            s1 = int(h[0])
            if s1 & 1:
                time.sleep(0)
                continue
            if int(h[1]) <= newer_than:
                return None
            flat = self._flat.copy()
            meta = ParamMeta(int(h[1]), int(h[2]), int(h[3]), int(h[4]))
            if int(h[0]) == s1:
                return flat, meta
        return None


class SharedCounters:
    """Monotonic counters every process can read without a message: env steps per simulator
    slot, learner samples and steps. Each slot has exactly one writer."""

    LEARNER_SAMPLES, LEARNER_STEPS, EPISODES_BASE = 0, 1, 2

    def __init__(self, ctx: BaseContext, n_simulators: int):
        self.n_simulators = n_simulators
        self._raw = ctx.RawArray("q", 2 + 2 * n_simulators)
        self._views()

    def _views(self) -> None:
        self._a = np.frombuffer(self._raw, dtype=np.int64)

    def __getstate__(self) -> dict:
        return {"n_simulators": self.n_simulators, "_raw": self._raw}

    def __setstate__(self, state: dict) -> None:
        self.n_simulators = state["n_simulators"]
        self._raw = state["_raw"]
        self._views()

    def add_env_steps(self, sim: int, steps: int, episodes: int = 0) -> None:
        self._a[2 + sim] += steps
        self._a[2 + self.n_simulators + sim] += episodes

    def set_learner(self, samples: int, steps: int) -> None:
        self._a[self.LEARNER_SAMPLES] = samples
        self._a[self.LEARNER_STEPS] = steps

    @property
    def env_steps(self) -> int:
        return int(self._a[2 : 2 + self.n_simulators].sum())

    @property
    def episodes(self) -> int:
        return int(self._a[2 + self.n_simulators :].sum())

    @property
    def learner_samples(self) -> int:
        return int(self._a[self.LEARNER_SAMPLES])

    @property
    def learner_steps(self) -> int:
        return int(self._a[self.LEARNER_STEPS])

    def restore(self, env_steps: int, learner_samples: int, learner_steps: int) -> None:
        """Start from a checkpoint's counts (resume); env steps go to slot 0."""
        self._a[:] = 0
        self._a[2] = env_steps
        self.set_learner(learner_samples, learner_steps)
