"""The ports a role is handed: what it may send, receive and read, as Protocols.

A role never builds a port. The backend that hosts it decides what a port is made of (the
local backend: Unix sockets, raw-byte pipes, a seqlock in shared memory, multiprocessing
queues and events) and hands the role one dataclass of ports; the role's code is the same
wherever it runs. A port whose peer has gone raises EOFError or OSError (see PEER_GONE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from d3q_core.roles.messages import Command, Experience, Message, ParamMeta

PEER_GONE = (EOFError, OSError)  # what a port raises once the other side has gone


@runtime_checkable
class Flag(Protocol):
    """A run-wide switch (stop, pause, replay ready): one setter, many readers."""

    def is_set(self) -> bool: ...
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class SharedInt(Protocol):
    """One integer every role can read: the learner's call batch, which the replay serves."""

    value: int


class EventsOut(Protocol):
    """Messages to the run. Stats are best effort (`wait=False` drops one when the channel is
    full); results the run must see (a checkpoint, a confirmation, a failure) wait."""

    def emit(self, message: Message, wait: bool = False) -> bool: ...


class CommandsIn(Protocol):
    def poll(self) -> Command | None: ...


class ExperienceOut(Protocol):
    """Simulator side: `send` waits while the replay holds too many of this simulator's
    batches (credits); False when the run is stopping or the replay has gone."""

    def send(self, experience: Experience) -> bool: ...
    def close(self) -> None: ...


class SampleBatchesOut(Protocol):
    """Replay side of the sample stream: batches out, their |TD| errors back."""

    rows: int  # records per batch (the learner's call batch); 0 until configured
    broken: bool  # the learner has gone
    outstanding: int  # batches sent and not answered yet
    depth: int  # at most this many outstanding

    def configure(self, rows: int) -> None: ...
    def has_room(self) -> bool: ...
    def send(self, records: np.ndarray, indices: np.ndarray, weights: np.ndarray) -> bool: ...
    def answers(self, limit: int = 64) -> list[tuple[np.ndarray, np.ndarray]]: ...


class ExperienceIn(Protocol):
    """Replay side: every simulator's batches, oldest first. `peek` the next one, `done` once
    it is in the memory (that returns its simulator a credit)."""

    def receive(self, timeout: float = 0.0, wake: SampleBatchesOut | None = None) -> bool: ...
    def peek(self) -> Experience | None: ...
    def done(self) -> None: ...
    def pending(self) -> int: ...
    def close(self) -> None: ...


class ShardPort(Protocol):
    """A replay shard's view of the whole sharded memory: it reports its priority total and
    smallest priority, and reads the smallest of every shard (its weights' reference)."""

    def report(self, total: float, p_min: float) -> None: ...
    def global_min(self) -> float | None: ...


class SampleBatchesIn(Protocol):
    """Learner side: (records, indices, weights) views valid until the next `get`."""

    def get(self, timeout: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None: ...
    def answer(self, indices: np.ndarray, td: np.ndarray) -> None: ...


class ParamsOut(Protocol):
    @property
    def version(self) -> int: ...
    def publish(self, flat: np.ndarray, learner_samples: int, env_steps: int) -> int: ...
    def continue_from(self, version: int) -> None: ...


@runtime_checkable
class ParamsIn(Protocol):
    """The newest published parameters, never blocking the learner."""

    @property
    def version(self) -> int: ...
    def read(self, newer_than: int = 0) -> tuple[np.ndarray, ParamMeta] | None: ...


class Counters(Protocol):
    """Monotonic counts every role and the run read without a message; each slot has one
    writer (simulator i its env steps, the learner its samples)."""

    @property
    def env_steps(self) -> int: ...
    @property
    def episodes(self) -> int: ...
    @property
    def learner_samples(self) -> int: ...
    @property
    def learner_steps(self) -> int: ...
    def add_env_steps(self, sim: int, steps: int, episodes: int = 0) -> None: ...
    def set_learner(self, samples: int, steps: int) -> None: ...
    def restore(self, env_steps: int, learner_samples: int, learner_steps: int) -> None:
        """The run's, before any role starts: a resumed run's counts from its checkpoint."""
        ...


# --- one dataclass of ports per role ---------------------------------------------------------


@dataclass
class SimulatorPorts:
    experiences: ExperienceOut
    params: ParamsIn
    counters: Counters
    events: EventsOut
    stop: Flag  # leave now (shutdown's first step)
    pause: Flag  # hold while set
    replay_ready: Flag  # the replay holds its minimum size: warm-up is over


@dataclass
class ReplayPorts:
    experiences: ExperienceIn
    samples: SampleBatchesOut
    commands: CommandsIn
    events: EventsOut
    stop: Flag
    ready: Flag  # set once replay.min_size transitions are stored
    call_batch: SharedInt  # the learner's records per call; 0 until TensorFlow has started
    shard: ShardPort | None = None  # one shard of several (Ray backend, replay.shards > 1)


@dataclass
class LearnerPorts:
    samples: SampleBatchesIn
    commands: CommandsIn
    events: EventsOut
    params: ParamsOut
    counters: Counters
    stop: Flag  # the whole run is over: leave without a checkpoint
    pause: Flag
    call_batch: SharedInt


@dataclass
class EvaluatorPorts:
    params: ParamsIn
    events: EventsOut
    stop: Flag


RolePorts = SimulatorPorts | ReplayPorts | LearnerPorts | EvaluatorPorts

