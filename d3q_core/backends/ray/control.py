"""The control ports over a HubLink: flags, counters, the call batch, events, commands and
the parameter stream, each reading the link's copy of the run-wide state.

Parameters go by the object store: the learner's `publish` keeps a copy of its newest
version, and the link's next sync `ray.put`s it once (at most one put per sync, however
often the learner publishes: readers only ever want the newest). A reader `ray.get`s that
version once, a read-only view of its node's object store.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import ray

from d3q_core.backends.ray.link import HubLink
from d3q_core.roles.messages import Command, Envelope, Message, ParamMeta


class LinkFlag:
    """A Flag: set here reaches the hub at the next sync; read from the link's copy."""

    def __init__(self, link: HubLink, name: str):
        self.link, self.name = link, name

    def is_set(self) -> bool:
        return self.link.flags[self.name].is_set()

    def set(self) -> None:
        self.link.set_flag(self.name, True)

    def clear(self) -> None:
        self.link.set_flag(self.name, False)

    def wait(self, timeout: float | None = None) -> bool:
        return self.link.flags[self.name].wait(timeout)


class LinkCounters:
    """Counters: this process's own counts go out at the next sync, the run's totals come
    back with it."""

    def __init__(self, link: HubLink):
        self.link = link

    @property
    def env_steps(self) -> int:
        return self.link.env_steps

    @property
    def episodes(self) -> int:
        return self.link.episodes

    @property
    def learner_samples(self) -> int:
        return self.link.learner_samples

    @property
    def learner_steps(self) -> int:
        return self.link.learner_steps

    def add_env_steps(self, sim: int, steps: int, episodes: int = 0) -> None:
        if steps or episodes:
            self.link.add_env_steps(steps, episodes)

    def set_learner(self, samples: int, steps: int) -> None:
        self.link.set_learner(samples, steps)

    def restore(self, env_steps: int, learner_samples: int, learner_steps: int) -> None:
        self.link.sync(restore=(env_steps, learner_samples, learner_steps))


class LinkCallBatch:
    """The SharedInt the learner sets once TensorFlow knows its batch and the replay reads."""

    def __init__(self, link: HubLink):
        self.link = link

    @property
    def value(self) -> int:
        return self.link.call_batch

    @value.setter
    def value(self, value: int) -> None:
        self.link.set_call_batch(int(value))


class LinkEvents:
    """EventsOut: stats are dropped while the link holds EVENTS_PENDING unsent; a message
    that must arrive is synced before `emit` returns."""

    def __init__(self, link: HubLink, role: str, index: int):
        self.link, self.role, self.index = link, role, index

    def emit(self, message: Message, wait: bool = False) -> bool:
        return self.link.emit(Envelope(self.role, self.index, message), must_arrive=wait)


class LinkCommands:
    def __init__(self, link: HubLink):
        self.link = link

    def poll(self) -> Command | None:
        commands = self.link.commands
        return commands.popleft() if commands else None  # one reader: no race


class LinkParamsOut:
    """ParamsOut: `publish` is a copy; the link's sync puts the newest version."""

    def __init__(self, link: HubLink):
        self.link = link
        self._version = 0
        self._newest: tuple[np.ndarray, ParamMeta] | None = None
        self._lock = threading.Lock()
        link.params_from(self)

    @property
    def version(self) -> int:
        return self._version

    def publish(self, flat: np.ndarray, learner_samples: int, env_steps: int) -> int:
        self._version += 1
        meta = ParamMeta(self._version, learner_samples, env_steps, time.monotonic_ns())
        with self._lock:
            self._newest = (np.array(flat, np.float32, copy=True), meta)
        return self._version

    def continue_from(self, version: int) -> None:
        self._version = max(self._version, version)

    def take(self) -> tuple[ParamMeta, list] | None:
        """For the link: the newest version not yet sent, put in the object store."""
        with self._lock:
            newest, self._newest = self._newest, None
        if newest is None:
            return None
        flat, meta = newest
        return meta, [ray.put(flat)]


class LinkParamsIn:
    """ParamsIn: the version the hub last told of, fetched once from the object store. The
    link asks for parameters from the first look on (the run looks only for a preview)."""

    def __init__(self, link: HubLink):
        self.link = link
        self._cached: tuple[np.ndarray, ParamMeta] | None = None

    @property
    def version(self) -> int:
        self.link.reads_params = True
        params = self.link.params
        return params[0].version if params is not None else 0

    def read(self, newer_than: int = 0) -> tuple[np.ndarray, ParamMeta] | None:
        self.link.reads_params = True
        params = self.link.params
        if params is None or params[0].version <= newer_than:
            return None
        meta, (ref,) = params
        if self._cached is None or self._cached[1].version != meta.version:
            try:
                self._cached = (ray.get(ref, timeout=10.0), meta)
            except ray.exceptions.RayError:  # its owner, the learner, has gone
                return None
        return self._cached


class LinkShard:
    """ShardPort: this shard's priority total and smallest priority go out with the next
    sync; the smallest of every shard comes back (as of the shards' last syncs)."""

    def __init__(self, link: HubLink):
        self.link = link

    def report(self, total: float, p_min: float) -> None:
        self.link.set_shard(float(total), float(p_min))

    def global_min(self) -> float | None:
        shards = self.link.shards
        return min(p for _, p in shards.values()) if shards else None
