"""A process's link to the run's hub: the copy of the run-wide state a role reads, and what
it has to say, synced every SYNC_SECONDS by a thread of its own (or at once when a message
must get through before the role goes on, such as a final checkpoint's).

The ports a role reads many times a second (flags, counters, the newest parameter version)
read this copy: one Ray call per sync, whatever the role's rate. A hub that cannot be
reached any more means the run is over: every flag a role leaves on is set.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import ray

from d3q_core.backends.ray.hub import FLAGS, LinkState, LinkUpdate
from d3q_core.roles.messages import Command, Envelope, ParamMeta

# Seconds between syncs, by role: a stop reaches a role within ~1-2 of them. The learner
# hands on parameters and the simulators take them up at theirs; the replay and the
# evaluator need only their flags and commands. Every 20 ms each cost the hub 18% of a
# core; a sync costs its caller ~1.2 ms. 100 ms for the learner and the simulators too kept
# Ray's share of their time under 5% but took longer to the goal (BENCHMARKS.md, "Ray
# backend": 22.7 s against 19.5 s at 50 ms, 5 seeds each beside the local backend).
SYNC_SECONDS = {"learner": 0.05, "simulator": 0.05, "replay": 0.1, "evaluator": 0.1,
                "run": 0.1}
EVENTS_PENDING = 512  # a role's unsent events; stats beyond that are dropped, as on a full pipe
# How long a sync may take before the hub counts as gone. A dead hub (or node) fails a call
# at once; only a hub that is alive and slow (a loaded machine, a long pause) takes this
# long, and that is no reason to end the run: the call made is waited on, never made twice.
HUB_PATIENCE_SECONDS = 30.0


class HubLink:
    """Shared by every port of one role process."""

    def __init__(self, hub: Any, role: str, index: int = 0):
        self.hub, self.role, self.index, self.period = hub, role, index, SYNC_SECONDS[role]
        self.flags = {name: threading.Event() for name in FLAGS}
        self.env_steps = self.episodes = self.learner_samples = self.learner_steps = 0
        self.call_batch = 0
        self.params: tuple[ParamMeta, list[Any]] | None = None
        self.reads_params = False  # set by the first read: only then do syncs bring them
        self.shards: dict[int, tuple[float, float]] = {}  # replay shard -> (total, p_min)
        self.commands: deque[Command] = deque()
        # the run's: the events each sync brings, whichever sync it was (a flag set, a
        # command sent, a restore), until the run takes them (take_events)
        self._events_in: list[Envelope] = []
        self.broken = False  # the hub has gone: the run is over
        self._lock = threading.Lock()  # guards the pending update
        self._syncing = threading.Lock()  # one sync at a time
        self._pending = LinkUpdate(role, index)
        self._params_source: Any = None  # the learner's ParamsOut: its newest version, put
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what the ports hand in ------------------------------------------------------------

    def emit(self, envelope: Envelope, must_arrive: bool) -> bool:
        with self._lock:
            if not must_arrive and len(self._pending.events) >= EVENTS_PENDING:
                return False
            self._pending.events.append(envelope)
        if must_arrive:
            self.sync()
        return True

    def add_env_steps(self, steps: int, episodes: int) -> None:
        with self._lock:  # a sync applying the hub's totals meanwhile would lose these
            self._pending.env_steps += steps
            self._pending.episodes += episodes
            self.env_steps += steps
            self.episodes += episodes

    def set_learner(self, samples: int, steps: int) -> None:
        with self._lock:
            self._pending.learner = (samples, steps)
            self.learner_samples, self.learner_steps = samples, steps

    def set_flag(self, name: str, value: bool) -> None:
        (self.flags[name].set if value else self.flags[name].clear)()
        with self._lock:
            self._pending.flags[name] = value
        if self._thread is None:  # the run's own link: a stop must not wait for a sync
            self.sync()

    def set_call_batch(self, value: int) -> None:
        with self._lock:
            self.call_batch = value
            self._pending.call_batch = value
        self.sync()  # the replay configures its batches from it

    def set_shard(self, total: float, p_min: float) -> None:
        with self._lock:
            self._pending.shard = (self.index, total, p_min)

    def params_from(self, source: Any) -> None:
        """The learner's ParamsOut: each sync takes its newest unsent version along."""
        self._params_source = source

    # --- syncing ---------------------------------------------------------------------------

    def start(self) -> HubLink:
        self._thread = threading.Thread(target=self._loop, name="d3q-hub-link", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._closed.wait(self.period):
            self.sync()

    def sync(self, wait_events: float = 0.0, **extra: Any) -> LinkState | None:
        """One round trip; `extra` goes into this update (the run's commands, its restore)."""
        with self._syncing:
            with self._lock:  # held only to swap: the role never waits for the round trip
                if self.broken:
                    return None
                update, self._pending = self._pending, LinkUpdate(self.role, self.index)
            for key, value in extra.items():
                setattr(update, key, value)
            if self.reads_params:
                update.params_after = self.params[0].version if self.params is not None else 0
            if self._params_source is not None:
                update.params = self._params_source.take()
            try:
                state = ray.get(self.hub.sync.remote(update, wait_events),
                                timeout=HUB_PATIENCE_SECONDS + wait_events)
            except (ray.exceptions.RayError, OSError):
                self._hub_gone()
                return None
            with self._lock:
                self._apply(state)
                self._events_in.extend(state.events)  # the hub has handed them over once
            return state

    def _apply(self, s: LinkState) -> None:
        for name, value in s.flags.items():
            if name not in self._pending.flags:  # a flag set here since wins until synced
                (self.flags[name].set if value else self.flags[name].clear)()
        self.env_steps = s.env_steps + self._pending.env_steps
        self.episodes = s.episodes + self._pending.episodes
        if self._pending.learner is None:
            self.learner_samples, self.learner_steps = s.learner_samples, s.learner_steps
        if self._pending.call_batch is None:
            self.call_batch = s.call_batch
        if s.params is not None:
            self.params = s.params
        self.shards = s.shards
        self.commands.extend(s.commands)

    def has_events(self) -> bool:
        return bool(self._events_in)

    def take_events(self) -> list[Envelope]:
        """The run's: every event the hub handed to this link since the last take. A sync
        made to set a flag used to drop what it brought: the stop of the simulators at the
        goal, a few ms after the goal's evaluation was read, lost the evaluator's
        confirmation about once in 20 Ray runs."""
        with self._lock:
            events, self._events_in = self._events_in, []
        return events

    def _hub_gone(self) -> None:
        self.broken = True
        for name in ("stop_all", "stop_sims"):
            self.flags[name].set()

    def close(self) -> None:
        """A last sync (what the role still had to say), then the thread ends."""
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self.sync()

