"""The seam between a run and where its roles run: the Backend protocol.

A run asks its backend to start a role from a recipe (the role's name, index, incarnation and
a picklable factory that builds the role object where it will run), watches the handles it
gets back, and talks to the roles only through what the backend hands it: run-wide flags and
counters, the parameter stream (for the preview), a stream of Envelopes, commands by role
name, and telemetry. The run never sees a socket, a pipe or a process object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from d3q_core.roles.messages import Command, Envelope
from d3q_core.roles.ports import Counters, Flag, ParamsIn
from d3q_core.snapshot import DeviceStats, role_name


class Role(Protocol):
    """Every role: built by its factory where it runs, then `run(ports)` to its exit code."""

    def run(self, ports: Any) -> int: ...


@dataclass(frozen=True)
class RoleRecipe:
    """What a backend needs to start one role: who it is and how to build it. `make` must be
    picklable (a functools.partial of a role class over plain settings, say): a backend may
    build the role in another process or on another machine."""

    role: str  # simulator, replay, learner, evaluator
    index: int
    incarnation: int
    make: Callable[[], Role]

    @property
    def name(self) -> str:
        return role_name(self.role, self.index)


@runtime_checkable
class RoleHandle(Protocol):
    """A started role, as the run watches it."""

    role: str
    index: int
    incarnation: int

    @property
    def pid(self) -> int | None: ...
    @property
    def node(self) -> str: ...
    @property
    def exitcode(self) -> int | None: ...
    def is_alive(self) -> bool: ...
    def kill(self) -> None: ...
    def join(self, timeout: float | None = None) -> None: ...


@dataclass(frozen=True)
class RunFlags:
    """The run-wide switches, set by the run and read by the roles."""

    stop_all: Flag  # every role leaves
    stop_sims: Flag  # the simulators leave (shutdown's first step, the goal)
    pause: Flag
    replay_ready: Flag  # the replay holds replay.min_size: warm-up is over


class Telemetry(Protocol):
    """Load of the machines the roles run on."""

    here: str  # the name of the node the run itself is on

    def devices(self, learner_devices: tuple[str, ...] = ()) -> DeviceStats: ...
    def processes(self, pids: Mapping[tuple[str, int], int],
                  nodes: Mapping[tuple[str, int], str] | None = None,
                  ) -> dict[tuple[str, int], tuple[float, int]]:
        """CPU percent and RSS of each process; `nodes` says where each runs (default:
        here)."""
        ...
    def total_memory(self, pids: list[int]) -> int: ...


@runtime_checkable
class Backend(Protocol):
    flags: RunFlags
    counters: Counters
    params: ParamsIn  # the newest published parameters, for the preview window
    telemetry: Telemetry

    def start(self, recipe: RoleRecipe) -> RoleHandle: ...
    def events(self, timeout: float) -> list[Envelope]:
        """The messages that have arrived, waiting up to `timeout` for the first."""
        ...
    def last_events(self) -> list[Envelope]:
        """What is left to read once every role has gone; never blocks for long."""
        ...
    def send(self, role: str, command: Command) -> bool:
        """A command to the role of that name; False if it could not be delivered."""
        ...
    def close(self) -> None: ...
