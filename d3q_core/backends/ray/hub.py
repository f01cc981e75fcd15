"""The run's shared state on a Ray cluster: one small actor beside the run.

What the local backend keeps in shared memory (flags, counters, the call batch, the newest
parameter version) and on queues (events, commands) lives here. Every role process talks to
it through one link (d3q_core.backends.ray.link) that syncs a few dozen times a second, so
the per-call cost of Ray (0.3-1 ms on this machine class) is paid per sync, never per env
step or per train step: a role reads its flags and counters from the link's copy.

Parameters are not copied through the hub: the learner `ray.put`s each version it hands on
and the hub keeps the reference (in a list, so Ray does not resolve it on the way), which
every reader gets zero-copy from the object store of its own node.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from d3q_core.roles.messages import Command, Envelope, ParamMeta
from d3q_core.snapshot import role_name

FLAGS = ("stop_all", "stop_sims", "pause", "replay_ready")
EVENTS_KEPT = 20_000  # events the run has not read yet; beyond that the oldest stats go
COMMANDS_KEPT = 16  # per role, as the local backend's command queues


@dataclass
class LinkUpdate:
    """What one process hands the hub at a sync: counts since its last sync, its events, the
    flags it set, and (the learner) the call batch and the newest parameters."""

    role: str  # simulator, replay, learner, evaluator, or "run" for the run itself
    index: int = 0
    env_steps: int = 0  # deltas since the last sync
    episodes: int = 0
    learner: tuple[int, int] | None = None  # (samples, steps), absolute
    events: list[Envelope] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)
    call_batch: int | None = None
    params: tuple[ParamMeta, list[Any]] | None = None  # (meta, [ObjectRef])
    commands: list[tuple[str, Command]] = field(default_factory=list)  # the run's, by name
    restore: tuple[int, int, int] | None = None  # the run's, before any role starts
    shard: tuple[int, float, float] | None = None  # a replay shard's (index, total, p_min)
    # the parameter version this process holds, -1 if it reads none: a newer one comes back
    params_after: int = -1


@dataclass
class LinkState:
    """What a sync hands back: the run-wide state, the commands for that role, and for the
    run the events that arrived."""

    flags: dict[str, bool]
    env_steps: int
    episodes: int
    learner_samples: int
    learner_steps: int
    call_batch: int
    params: tuple[ParamMeta, list[Any]] | None  # only a version newer than params_after
    commands: list[Command]
    events: list[Envelope]
    commands_dropped: int = 0  # the run's commands that found a full queue
    shards: dict[int, tuple[float, float]] = field(default_factory=dict)  # (total, p_min)


class RunHub:
    """Threaded actor (every method takes the lock briefly; only the run's sync waits, and
    it waits on a condition, for events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._flags = dict.fromkeys(FLAGS, False)
        self._env_steps = self._episodes = 0
        self._learner = (0, 0)
        self._call_batch = 0
        self._params: tuple[ParamMeta, list[Any]] | None = None
        self._events: deque[Envelope] = deque(maxlen=EVENTS_KEPT)
        self._commands: dict[str, deque[Command]] = {}  # by role name: learner, replay 1, ...
        self._shards: dict[int, tuple[float, float]] = {}

    def ping(self) -> bool:
        return True

    def sync(self, update: LinkUpdate, wait_events: float = 0.0) -> LinkState:
        """Fold `update` in and answer with the state. The run (`role == "run"`) gets the
        events, waiting up to `wait_events` seconds for the first."""
        with self._lock:
            dropped = self._apply(update)
            events: list[Envelope] = []
            if update.role == "run":
                if not self._events and wait_events > 0:
                    self._arrived.wait(wait_events)
                events = list(self._events)
                self._events.clear()
            commands: list[Command] = []
            queue = self._commands.get(role_name(update.role, update.index))
            if queue:
                commands = list(queue)
                queue.clear()
            return LinkState(dict(self._flags), self._env_steps, self._episodes,
                             self._learner[0], self._learner[1], self._call_batch,
                             self._params_for(update.params_after), commands, events, dropped,
                             dict(self._shards))

    def _params_for(self, after: int) -> tuple[ParamMeta, list[Any]] | None:
        """The newest parameters, for a process that reads them and holds an older version.
        Handing the reference to every sync (70 a second at the defaults) cost each of them
        0.3 ms more, and made the learner, which owns the object, hear of every borrower."""
        if after < 0 or self._params is None or self._params[0].version <= after:
            return None
        return self._params

    def _apply(self, u: LinkUpdate) -> int:
        if u.restore is not None:
            self._env_steps, samples, steps = u.restore
            self._learner = (samples, steps)
        self._env_steps += u.env_steps
        self._episodes += u.episodes
        if u.learner is not None:
            self._learner = u.learner
        self._flags.update(u.flags)
        if u.call_batch is not None:
            self._call_batch = u.call_batch
        if u.params is not None and (self._params is None
                                     or u.params[0].version > self._params[0].version):
            self._params = u.params
        if u.shard is not None:
            index, total, p_min = u.shard
            self._shards[index] = (total, p_min)
        dropped = 0
        for name, command in u.commands:
            queue = self._commands.setdefault(name, deque())
            if len(queue) >= COMMANDS_KEPT:
                dropped += 1
            else:
                queue.append(command)
        if u.events:
            self._events.extend(u.events)
            self._arrived.notify_all()
        return dropped
