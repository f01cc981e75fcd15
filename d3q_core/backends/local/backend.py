"""LocalBackend: every role a spawned process on this machine.

It owns the machinery the roles' ports are made of: the seqlock parameter store and shared
counters, the replay's authenticated Unix socket for experiences, the raw-byte pipe pair
between the replay and the learner, the run-wide events, one events pipe per role
incarnation (read here; a child killed mid-message can only lose its own), and a command
queue each for the learner and the replay.
"""

from __future__ import annotations

import pickle
import queue
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from d3q_core.algo.qnet import QNetSpec
from d3q_core.algo.transitions import record_dtype
from d3q_core.backends.local.entry import run_role
from d3q_core.backends.local.inbox import InboxAddress
from d3q_core.backends.local.link import SampleLink
from d3q_core.backends.local.ports import EvaluatorPlan, LearnerPlan, ReplayPlan, SimulatorPlan
from d3q_core.backends.local.process import (
    EVALUATOR_NICENESS,
    WORKER_NICENESS,
    main_module_hidden,
    spawn_context,
)
from d3q_core.backends.local.shared import ParamStore, SharedCounters
from d3q_core.config import Config
from d3q_core.roles.messages import Command, Envelope
from d3q_core.run.backend import RoleRecipe, RunFlags
from d3q_core.snapshot import DeviceStats
from d3q_core.telemetry import DeviceSampler, ProcessSampler


@dataclass
class LocalHandle:
    """A role in a child process: the RoleHandle protocol over multiprocessing.Process."""

    role: str
    index: int
    incarnation: int
    process: Any

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def node(self) -> str:
        return "local"

    @property
    def exitcode(self) -> int | None:
        return self.process.exitcode

    def is_alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        self.process.kill()

    def join(self, timeout: float | None = None) -> None:
        self.process.join(timeout)


class LocalTelemetry:
    """This machine's cores, GPUs and processes (psutil, NVML)."""

    here = "local"

    def __init__(self) -> None:
        self._devices = DeviceSampler()
        self._procs = ProcessSampler()

    def devices(self, learner_devices: tuple[str, ...] = ()) -> DeviceStats:
        return self._devices.sample(learner_devices=learner_devices)

    def processes(self, pids: Mapping[tuple[str, int], int],
                  nodes: Mapping[tuple[str, int], str] | None = None,
                  ) -> dict[tuple[str, int], tuple[float, int]]:
        return self._procs.sample(pids)

    def total_memory(self, pids: list[int]) -> int:
        return ProcessSampler.total_memory(pids)


class LocalBackend:
    def __init__(self, config: Config, spec: QNetSpec, n_simulators: int, paused: bool = False,
                 output: str | None = None):
        """`output`: the file every child's stdout and stderr go to (the run's log.txt)."""
        self.config, self.output = config, output
        self.ctx = ctx = spawn_context()
        self.record_dtype = record_dtype(spec)
        self.params = ParamStore(ctx, spec.n_params)
        self.counters = SharedCounters(ctx, n_simulators)
        self.flags = RunFlags(stop_all=ctx.Event(), stop_sims=ctx.Event(), pause=ctx.Event(),
                              replay_ready=ctx.Event())
        if paused:
            self.flags.pause.set()
        self.call_batch = ctx.Value("i", 0)  # the learner's records per call; 0 until known
        self.inbox_address = InboxAddress.new()  # the replay listens; a socket per simulator
        self.sample_link = SampleLink.new(ctx)  # replay <-> learner; closed here once both run
        self._link_users: set[str] = set()
        self._events: set[Connection] = set()  # read ends of the live incarnations' pipes
        self.commands = {"learner": ctx.Queue(maxsize=16), "replay": ctx.Queue(maxsize=16)}
        self.telemetry = LocalTelemetry()

    # --- roles -------------------------------------------------------------------------------

    def _plan(self, recipe: RoleRecipe, events: Connection) -> Any:
        f, cfg = self.flags, self.config
        if recipe.role == "simulator":
            return SimulatorPlan(recipe.index, self.inbox_address, cfg.replay.queue_batches,
                                 self.params, self.counters, events, f.stop_sims, f.pause,
                                 f.replay_ready)
        if recipe.role == "replay":
            return ReplayPlan(self.inbox_address, self.sample_link, self.record_dtype,
                              cfg.replay.prefetch, self.commands["replay"], events,
                              f.stop_all, f.replay_ready, self.call_batch)
        if recipe.role == "learner":
            return LearnerPlan(self.sample_link, self.record_dtype, self.commands["learner"],
                               events, self.params, self.counters, f.stop_all, f.pause,
                               self.call_batch)
        if recipe.role == "evaluator":
            return EvaluatorPlan(self.params, events, f.stop_all)
        raise ValueError(f"unknown role {recipe.role!r}")

    def start(self, recipe: RoleRecipe) -> LocalHandle:
        title = f"d3q: {recipe.name}"
        niceness = EVALUATOR_NICENESS if recipe.role == "evaluator" else WORKER_NICENESS
        reader, writer = self.ctx.Pipe(duplex=False)
        args = (title, niceness, self.output, recipe, self._plan(recipe, writer))
        p = self.ctx.Process(target=run_role, args=args,
                             name=f"d3q-{recipe.role}-{recipe.index}", daemon=True)
        with main_module_hidden():  # a caller's unguarded script is not re-run in the child
            p.start()
        writer.close()  # the child holds the only write end: its death is EOF here
        self._events.add(reader)
        if recipe.role in ("replay", "learner"):
            self._link_users.add(recipe.role)
            if self._link_users == {"replay", "learner"}:
                # both ends now live in the learner and the replay: with no copy left here,
                # either one's death is EOF or a broken pipe to the other, never a wait
                # that does not end (a restarted one could not rejoin the link anyway)
                self.sample_link.close()
        return LocalHandle(recipe.role, recipe.index, recipe.incarnation, p)

    # --- messages ----------------------------------------------------------------------------

    def _read(self, conn: Connection, into: list[Envelope], limit: int = 1000) -> None:
        try:
            while len(into) < limit and conn.poll():
                into.append(conn.recv())
        except (EOFError, OSError, pickle.UnpicklingError):  # that incarnation has gone:
            # what it sent whole is kept, a message its death cut short is not
            self._events.discard(conn)
            conn.close()

    def events(self, timeout: float) -> list[Envelope]:
        got: list[Envelope] = []
        if not self._events:
            time.sleep(timeout)
            return got
        for conn in wait(list(self._events), timeout):
            self._read(conn, got)  # type: ignore[arg-type]
        return got

    def last_events(self) -> list[Envelope]:
        """What is left once every child is gone. Each pipe's only write end died with its
        child, so a message cut short by a kill ends in EOF, never in a read that waits."""
        got: list[Envelope] = []
        for conn in list(self._events):
            self._read(conn, got, limit=100_000)
        return got

    def send(self, role: str, command: Command) -> bool:
        try:
            self.commands[role].put(command, timeout=1.0)
            return True
        except queue.Full:
            return False

    def close(self) -> None:
        """Nothing still in a queue or a pipe matters now."""
        for q in self.commands.values():
            q.close()
            q.cancel_join_thread()
        for conn in self._events:
            conn.close()
        self._events.clear()
