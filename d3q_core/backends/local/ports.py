"""The local backend's ports: what each role's ports are made of on one machine, as picklable
plans that a spawned child opens into the role's ports dataclass.

Most of the machinery satisfies the Protocols of d3q_core.roles.ports as it is: a
multiprocessing Event is a Flag, a Value('i') a SharedInt, the seqlock ParamStore both params
ports, SharedCounters the counters, ExperienceSender / ExperienceInbox the experience ports,
BatchSender / BatchReceiver the sample stream. Each role incarnation sends its events on a
pipe of its own (a child killed mid-message loses only its own messages: the run reads EOF
from that pipe and nothing else is touched); commands travel on bounded multiprocessing
queues, each with one writer, the run.
"""

from __future__ import annotations

import queue
import select
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from d3q_core.backends.local.inbox import ExperienceInbox, ExperienceSender, InboxAddress
from d3q_core.backends.local.link import BatchReceiver, BatchSender, SampleLink
from d3q_core.backends.local.shared import ParamStore, SharedCounters
from d3q_core.roles.messages import Command, Envelope, Message
from d3q_core.roles.ports import EvaluatorPorts, LearnerPorts, ReplayPorts, SimulatorPorts


class PipeEvents:
    """EventsOut over this role incarnation's own pipe to the run; each message goes in an
    Envelope naming its sender."""

    def __init__(self, conn: Connection, role: str, index: int):
        self.conn, self.role, self.index = conn, role, index

    def emit(self, message: Message, wait: bool = False) -> bool:
        """`wait=False` (stats, logs): dropped rather than blocking while the pipe is full
        (a Linux pipe is writable while PIPE_BUF bytes are free, more than a stats message);
        `wait=True`: blocks until the run has read enough."""
        try:
            if not wait and not select.select([], [self.conn.fileno()], [], 0)[1]:
                return False
            self.conn.send(Envelope(self.role, self.index, message))
            return True
        except (OSError, ValueError):  # the run has gone (the child dies with it anyway)
            return False


class QueueCommands:
    """CommandsIn over a role's command queue."""

    def __init__(self, q: Any):
        self.q = q

    def poll(self) -> Command | None:
        try:
            return self.q.get_nowait()
        except queue.Empty:
            return None


@dataclass
class SimulatorPlan:
    index: int
    inbox: InboxAddress
    credits: int  # replay.queue_batches
    params: ParamStore
    counters: SharedCounters
    events: Connection  # this incarnation's pipe to the run (write end)
    stop: Any
    pause: Any
    replay_ready: Any

    def open(self) -> SimulatorPorts:
        return SimulatorPorts(ExperienceSender(self.inbox, self.credits, self.stop),
                              self.params, self.counters,
                              PipeEvents(self.events, "simulator", self.index),
                              self.stop, self.pause, self.replay_ready)


@dataclass
class ReplayPlan:
    inbox: InboxAddress
    link: SampleLink
    record_dtype: np.dtype
    prefetch: int  # replay.prefetch
    commands: Any
    events: Connection
    stop: Any
    ready: Any
    call_batch: Any

    def open(self) -> ReplayPorts:
        return ReplayPorts(ExperienceInbox(self.inbox),
                           BatchSender(self.link.keep_replay_ends(), self.record_dtype,
                                       self.prefetch),
                           QueueCommands(self.commands), PipeEvents(self.events, "replay", 0),
                           self.stop, self.ready, self.call_batch)


@dataclass
class LearnerPlan:
    link: SampleLink
    record_dtype: np.dtype
    commands: Any
    events: Connection
    params: ParamStore
    counters: SharedCounters
    stop: Any
    pause: Any
    call_batch: Any

    def open(self) -> LearnerPorts:
        # rows: configured by the learner's first get (the call batch is known only then)
        return LearnerPorts(LazyBatchReceiver(self.link.keep_learner_ends(), self.record_dtype,
                                              self.call_batch),
                            QueueCommands(self.commands), PipeEvents(self.events, "learner", 0),
                            self.params, self.counters, self.stop, self.pause, self.call_batch)


@dataclass
class EvaluatorPlan:
    params: ParamStore
    events: Connection
    stop: Any

    def open(self) -> EvaluatorPorts:
        return EvaluatorPorts(self.params, PipeEvents(self.events, "evaluator", 0), self.stop)


class LazyBatchReceiver:
    """A BatchReceiver sized on first use: the learner publishes its call batch (rows per
    sample batch) only once TensorFlow has built the model, after its ports were opened."""

    def __init__(self, link: SampleLink, record_dtype: np.dtype, call_batch: Any):
        self._link, self._dtype, self._call_batch = link, record_dtype, call_batch
        self._receiver: BatchReceiver | None = None

    def _get(self) -> BatchReceiver:
        if self._receiver is None:
            self._receiver = BatchReceiver(self._link, self._dtype, self._call_batch.value)
        return self._receiver

    def get(self, timeout: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        return self._get().get(timeout)

    def answer(self, indices: np.ndarray, td: np.ndarray) -> None:
        self._get().answer(indices, td)
