"""RayBackend: every role a Ray actor, placed by the resources the `[cluster]` section asks
for, with the run's shared state in a hub actor beside the run.

`cluster.address = "local"` starts a private Ray instance for this run alone (and stops it
at the end: nothing of it is left); "auto" or HOST:PORT joins a running cluster, where the
run kills every actor it started and leaves the cluster as it found it. `ray stop` is never
called: it would kill every Ray process on the machine.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import uuid
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from d3q_core.algo.qnet import QNetSpec
from d3q_core.algo.transitions import record_dtype
from d3q_core.backends.local.process import EVALUATOR_NICENESS, WORKER_NICENESS
from d3q_core.backends.ray.actor import PortSettings, RoleActor
from d3q_core.backends.ray.control import LinkCounters, LinkFlag, LinkParamsIn
from d3q_core.backends.ray.data import EXPERIENCE_GROUP
from d3q_core.backends.ray.fifo import make_fifos, remove_fifos
from d3q_core.backends.ray.hostproc import (
    WORKER_ENV,
    host_address,
    host_removes,
    start_host,
    stop_host,
)
from d3q_core.backends.ray.hub import RunHub
from d3q_core.backends.ray.link import HubLink
from d3q_core.backends.ray.telemetry import RayTelemetry
from d3q_core.config import Config
from d3q_core.roles.messages import Command, Envelope
from d3q_core.run.backend import RoleRecipe, RunFlags

# every thread of a role actor but the role's own waits on a call: a handful is plenty. The
# replay's experience calls each hold a thread until stored, so they have a group of their
# own (credits x the simulators feeding it, and as many again for calls a restarted
# simulator's old incarnation left): however many wait there, the learner's answers, which
# free the rate limiter that holds them, still get a thread
ACTOR_THREADS = 8


def experience_threads(n_simulators: int, shards: int, credits: int) -> int:
    """Threads of a replay shard's experience group (see ACTOR_THREADS)."""
    return 2 * -(-n_simulators // shards) * credits


def role_actor_classes(experience: int) -> dict[str, Any]:
    """One actor class per role, so that ps and top show `ray::d3q_learner` (Ray titles an
    actor's process by its class, over any title set inside); the replay's has the
    experience group (Ray takes concurrency groups on the class only, not in `options`)."""
    classes = {}
    for role in ("simulator", "replay", "learner", "evaluator"):
        cls = type(f"d3q_{role}", (RoleActor,), {})
        classes[role] = (ray.remote(concurrency_groups={EXPERIENCE_GROUP: experience})(cls)
                         if role == "replay" else ray.remote(cls))
    return classes


class NodeNames(dict):
    """Node id -> the name the faces show: the run's own node is "head", the others "node 1",
    "node 2", ... in the order they are first seen (a node that joins later gets the next)."""

    def __init__(self, here: str):
        super().__init__({here: "head"})

    def __call__(self, node_id: str) -> str:
        if node_id not in self:
            for node in ray.nodes():  # named in the order Ray lists them
                self.setdefault(node["NodeID"], f"node {len(self)}")
        return self.get(node_id, node_id[:8])


@dataclass
class RayHandle:
    """A role in an actor: the RoleHandle protocol over the actor and its `run` call."""

    role: str
    index: int
    incarnation: int
    actor: Any
    run_ref: Any
    where_ref: Any
    node_name: Any  # node id -> the name the faces show (the backend's NodeNames)
    _where: tuple[int, str] | None = None
    _exitcode: int | None = None
    _reaped: bool = False

    def _located(self) -> tuple[int, str] | None:
        if self._where is None and ray.is_initialized():  # never after close()
            done, _ = ray.wait([self.where_ref], timeout=0)
            if done:
                try:
                    self._where = ray.get(done[0])
                except ray.exceptions.RayError:
                    self._where = (0, "")
        return self._where

    @property
    def pid(self) -> int | None:
        where = self._located()
        return where[0] or None if where else None

    @property
    def node(self) -> str:
        where = self._located()
        return self.node_name(where[1]) if where and where[1] else "?"

    @property
    def exitcode(self) -> int | None:
        if self._exitcode is None and not self.is_alive():
            try:
                self._exitcode = int(ray.get(self.run_ref))
            except ray.exceptions.RayActorError:
                self._exitcode = -9  # its process died (killed, or its node went)
            except ray.exceptions.RayError:
                self._exitcode = 1
        return self._exitcode

    def is_alive(self) -> bool:
        if self._reaped:
            return False
        done, _ = ray.wait([self.run_ref], timeout=0)
        if done:  # the role has left: its actor process goes too
            self._reaped = True
            with contextlib.suppress(Exception):
                ray.kill(self.actor, no_restart=True)
        return not done

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            ray.kill(self.actor, no_restart=True)

    def join(self, timeout: float | None = None) -> None:
        ray.wait([self.run_ref], timeout=timeout)


def connect(config: Config, output: str | None,
            host: subprocess.Popen | None = None) -> subprocess.Popen | None:
    """Start or join Ray as the cluster section says; the host of the instance it started
    (host.py), or None (it joined a cluster). `host`: one started already (make_backend
    starts it before this module imports Ray)."""
    cl = config.cluster
    if ray.is_initialized():  # a caller (a test, a notebook) joined a cluster already
        if host is not None:
            stop_host(host)
        return None
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR,
             "namespace": cl.namespace}
    if cl.address != "local":
        ray.init(address=cl.address, **quiet)
        return None
    host = host or start_host(cl.num_cpus, cl.include_dashboard, output)
    try:
        ray.init(address=host_address(host), **quiet)
    except BaseException:
        stop_host(host)
        raise
    return host


def route_ray_messages(output: str | None) -> None:
    """Ray's driver prints the cluster's error messages ("A worker died or was killed ...")
    on stdout, over the dashboard and between the headless run's lines; they go to the
    run's log.txt instead. Ray has no setting for it: this replaces the function its error
    listener calls (ray._private.worker.print_to_stdstream, ray 2.60.0 as pinned)."""
    import ray._private.worker as ray_worker

    if not hasattr(ray_worker, "print_to_stdstream"):
        return

    def to_log(data: dict, ignore_prefix: bool = False) -> None:
        if not output:
            return
        with contextlib.suppress(OSError), open(output, "a", encoding="utf-8") as f:
            for line in data.get("lines", ()):
                f.write(f"({data.get('pid', 'ray')}) {line}\n")

    ray_worker.print_to_stdstream = to_log


class RayBackend:
    def __init__(self, config: Config, spec: QNetSpec, n_simulators: int, paused: bool = False,
                 output: str | None = None, host: subprocess.Popen | None = None):
        self.config, self.output, self.spec = config, output, spec
        self.fifos: str | None = None
        self.hub: Any = None
        self.telemetry: RayTelemetry | None = None
        self._actors: list[Any] = []
        self.host = host
        try:
            route_ray_messages(output)
            self.host = connect(config, output, host)
            self._open(config, n_simulators, paused)
        except BaseException:  # a failed start leaves nothing either: not the hub, nor Ray
            self.close()
            raise

    def _open(self, config: Config, n_simulators: int, paused: bool) -> None:
        cl = config.cluster
        self.namespace = ray.get_runtime_context().namespace
        prefix = f"d3q-{uuid.uuid4().hex[:8]}-"
        here = ray.get_runtime_context().get_node_id()
        self.nodes = NodeNames(here)
        self.hub = ray.remote(RunHub).options(
            name=prefix + "hub", num_cpus=0, max_concurrency=64,
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
        self.link = HubLink(self.hub, "run")
        ray.get(self.hub.ping.remote(), timeout=60)
        self.flags = RunFlags(*(LinkFlag(self.link, name) for name in
                                ("stop_all", "stop_sims", "pause", "replay_ready")))
        if paused:
            self.flags.pause.set()
        self.counters = LinkCounters(self.link)
        self.params = LinkParamsIn(self.link)
        self.telemetry = RayTelemetry(self.nodes)
        # a private instance is this machine alone: samples and answers go through FIFOs
        self.fifos = make_fifos(config.replay.shards) if cl.address == "local" else None
        if self.fifos and self.host is not None:
            host_removes(self.host, self.fifos)
        self.settings = PortSettings(self.hub, self.namespace, prefix,
                                     config.replay.queue_batches,
                                     config.simulators.batch_seconds, config.replay.prefetch,
                                     cl.sample_batches_per_call, config.replay.shards,
                                     self.fifos, record_dtype(self.spec))
        self._role_actors = role_actor_classes(
            experience_threads(n_simulators, config.replay.shards, config.replay.queue_batches))
        # a private instance's workers have WORKER_ENV already (a runtime env would start
        # a fresh worker for each actor instead of taking a prestarted one)
        self._env = None if self.host is not None else {"env_vars": WORKER_ENV}

    # --- roles -------------------------------------------------------------------------------

    def _resources(self, role: str) -> dict[str, float]:
        cl = self.config.cluster
        wanted = {"simulator": cl.simulator_resources, "learner": cl.learner_resources,
                  "replay": cl.replay_resources or cl.learner_resources,
                  "evaluator": cl.evaluator_resources}[role]
        return {k: float(v) for k, v in wanted.items()}

    def start(self, recipe: RoleRecipe) -> RayHandle:
        options: dict[str, Any] = {
            "num_cpus": 0, "resources": self._resources(recipe.role), "max_restarts": 0,
            "max_concurrency": ACTOR_THREADS}
        if self._env is not None:
            options["runtime_env"] = self._env
        if recipe.role == "learner" and self.config.cluster.learner_gpus:
            options["num_gpus"] = self.config.cluster.learner_gpus  # a node with that many
        if recipe.role in ("replay", "learner"):  # their peers find them by name
            options["name"] = self.settings.actor_name(recipe.role, recipe.index)
        niceness = EVALUATOR_NICENESS if recipe.role == "evaluator" else WORKER_NICENESS
        actor = self._role_actors[recipe.role].options(**options).remote(
            f"d3q: {recipe.name}", self.output, niceness)
        self._actors.append(actor)
        return RayHandle(recipe.role, recipe.index, recipe.incarnation, actor,
                         actor.run.remote(recipe, self.settings), actor.where.remote(),
                         self.nodes)

    # --- messages ----------------------------------------------------------------------------

    def _take(self, wait: float) -> list[Envelope]:
        """What every sync of the run's link brought, this one's too (the link keeps them:
        a flag set or a command sent syncs as well)."""
        self.link.sync(wait_events=0.0 if self.link.has_events() else wait)
        return self.link.take_events()

    def events(self, timeout: float) -> list[Envelope]:
        """Waits at least the run's sync period: each look is a call to the hub."""
        return self._take(max(timeout, self.link.period))

    def last_events(self) -> list[Envelope]:
        return self._take(0.0)

    def send(self, role: str, command: Command) -> bool:
        state = self.link.sync(commands=[(role, command)])
        return state is not None and not state.commands_dropped

    def close(self) -> None:
        """Every actor this run started goes; a private instance is stopped."""
        for actor in [*self._actors, self.hub]:
            if actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
        self._actors.clear()
        if self.telemetry is not None:
            self.telemetry.close()
        remove_fifos(self.fifos)
        if self.host is not None:
            ray.shutdown()  # this driver leaves; the host stops the instance
            stop_host(self.host)
