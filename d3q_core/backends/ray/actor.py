"""The one actor class every role runs in on a Ray cluster, and the ports it opens.

A role runs in the actor process itself, on one of the actor's threads (forking inside an
actor hangs); its peers' calls (`deliver`) land on the others, in the actor's mailbox. The
actor does what the local backend's child setup does: names itself, writes its output to
the run's log, yields the cores to the run (niceness), and leaves terminal signals to the
run, which leads every stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import ray

from d3q_core.backends.local.process import WORKER_NICENESS, redirect_output, set_title
from d3q_core.backends.ray.control import (
    LinkCallBatch,
    LinkCommands,
    LinkCounters,
    LinkEvents,
    LinkFlag,
    LinkParamsIn,
    LinkParamsOut,
    LinkShard,
)
from d3q_core.backends.ray.data import (
    ExperienceCalls,
    ExperienceMailbox,
    SampleCalls,
    SampleMailbox,
)
from d3q_core.backends.ray.fifo import FifoSampleReceiver, FifoSampleSender
from d3q_core.backends.ray.link import HubLink
from d3q_core.backends.ray.mailbox import Mailbox
from d3q_core.roles.messages import Envelope, Failed
from d3q_core.roles.ports import EvaluatorPorts, LearnerPorts, ReplayPorts, SimulatorPorts


@dataclass(frozen=True)
class PortSettings:
    """What every role actor needs to open its ports (picklable: actor handles are)."""

    hub: Any
    namespace: str
    prefix: str  # this run's actor names start with it
    credits: int  # replay.queue_batches: experience calls in flight per simulator
    batch_seconds: float  # simulators.batch_seconds
    prefetch: int  # replay.prefetch
    per_call: int  # cluster.sample_batches_per_call
    shards: int  # replay.shards
    # one machine (a private instance): the FIFOs' folder for samples and answers (fifo.py)
    fifos: str | None = None
    record_dtype: Any = None  # what a sample batch's records are, for the FIFOs

    def actor_name(self, role: str, index: int = 0) -> str:
        return f"{self.prefix}{role}-{index}"


class PeerActor:
    """A peer found by name when first needed (the learner starts before the replay, so
    neither can be handed the other)."""

    def __init__(self, name: str, namespace: str, timeout: float = 120.0):
        self.name, self.namespace, self.timeout = name, namespace, timeout
        self._handle: Any = None

    def __call__(self) -> Any:
        deadline = time.monotonic() + self.timeout
        while self._handle is None:
            try:
                self._handle = ray.get_actor(self.name, namespace=self.namespace)
            except ValueError:
                if time.monotonic() > deadline:
                    raise EOFError(f"no actor {self.name} in {self.namespace}") from None
                time.sleep(0.05)
        return self._handle


def open_ports(role: str, index: int, link: HubLink, mailbox: Mailbox,
               s: PortSettings) -> Any:
    stop_all, stop_sims = LinkFlag(link, "stop_all"), LinkFlag(link, "stop_sims")
    pause, ready = LinkFlag(link, "pause"), LinkFlag(link, "replay_ready")
    events = LinkEvents(link, role, index)
    if role == "simulator":  # simulator i feeds shard i mod shards
        replay = PeerActor(s.actor_name("replay", index % s.shards), s.namespace)()
        return SimulatorPorts(ExperienceCalls(replay, s.credits, s.batch_seconds, stop_sims),
                              LinkParamsIn(link), LinkCounters(link), events, stop_sims,
                              pause, ready)
    if role == "replay":
        learner = PeerActor(s.actor_name("learner"), s.namespace)
        samples = (FifoSampleSender(s.fifos, index, s.record_dtype, s.prefetch) if s.fifos
                   else SampleCalls(learner, mailbox, s.prefetch, s.per_call, index))
        return ReplayPorts(ExperienceMailbox(mailbox), samples,
                           LinkCommands(link), events, stop_all, ready, LinkCallBatch(link),
                           LinkShard(link) if s.shards > 1 else None)
    if role == "learner":
        replays = [PeerActor(s.actor_name("replay", i), s.namespace) for i in range(s.shards)]
        samples = (FifoSampleReceiver(s.fifos, s.shards, s.record_dtype, LinkCallBatch(link),
                                      lambda: link.shards) if s.fifos
                   else SampleMailbox(mailbox, replays, lambda: link.shards))
        return LearnerPorts(samples,
                            LinkCommands(link), events, LinkParamsOut(link),
                            LinkCounters(link), stop_all, pause, LinkCallBatch(link))
    if role == "evaluator":
        return EvaluatorPorts(LinkParamsIn(link), events, stop_all)
    raise ValueError(f"unknown role {role!r}")


class RoleActor:
    """Hosts one role incarnation: `run` is the role's loop, `deliver` its peers' calls."""

    def __init__(self, title: str, output: str | None, niceness: int):
        self.title = title
        self.mailbox = Mailbox()
        redirect_output(output)
        with contextlib.suppress(OSError):
            # Ray starts workers at its own niceness (RAY_worker_niceness, 15 by default; a
            # private instance sets 0): a role goes to at least its own, the evaluator stays
            # below the others as on one machine
            base = os.nice(0)
            target = niceness if base == 0 else min(19, base + niceness - WORKER_NICENESS)
            os.nice(max(0, target - base))
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)

    def where(self) -> tuple[int, str]:
        """This actor's process id and its node's id."""
        return os.getpid(), ray.get_runtime_context().get_node_id()

    def run(self, recipe: Any, settings: PortSettings) -> int:
        set_title(self.title)
        link = HubLink(settings.hub, recipe.role, recipe.index).start()
        code, ports = 1, None
        try:
            role = recipe.make()
            ports = open_ports(recipe.role, recipe.index, link, self.mailbox, settings)
            code = int(role.run(ports))
        except Exception as exc:  # the run's supervision policy decides what follows
            link.emit(Envelope(recipe.role, recipe.index, Failed(f"{type(exc).__name__}: {exc}")),
                      must_arrive=True)
            code = 1
        finally:
            self.mailbox.close()
            samples = getattr(ports, "samples", None)
            if hasattr(samples, "close"):  # FIFO ends: the peer's next read or write fails
                samples.close()
            link.close()
        return code

    def deliver(self, channel: str, payload: Any) -> bool:
        return self.mailbox.deliver(channel, payload)
