"""The supervision policy: which roles come back when they die, how often, and which deaths
end the run. It watches RoleHandles from the backend and knows nothing of processes."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from d3q_core.config import StopConfig
from d3q_core.run.backend import Backend, RoleHandle, RoleRecipe
from d3q_core.snapshot import role_name

# hold no state a run needs back: a new incarnation (the same index, the simulator its same
# epsilons) carries on where the dead one was
RESTARTED_ROLES = ("simulator", "evaluator")


@dataclass
class Child:
    handle: RoleHandle
    restarts: int = 0
    state: str = "starting"  # starting, running, restarting, exited, failed
    restart_times: deque = field(default_factory=lambda: deque(maxlen=64))

    @property
    def role(self) -> str:
        return self.handle.role

    @property
    def index(self) -> int:
        return self.handle.index

    @property
    def name(self) -> str:
        return role_name(self.role, self.index)


class Supervisor:
    def __init__(self, backend: Backend, stop: StopConfig,
                 restart_recipe: Callable[[str, int, int], RoleRecipe],
                 log: Callable[[str, str], None]):
        self.backend, self.stop = backend, stop
        self.restart_recipe = restart_recipe  # (role, index, incarnation) -> recipe
        self.log = log
        self.children: list[Child] = []

    def start(self, recipe: RoleRecipe) -> Child:
        child = Child(self.backend.start(recipe))
        self.children.append(child)
        return child

    def __iter__(self) -> Iterator[Child]:
        return iter(self.children)

    def find(self, role: str, index: int = 0) -> Child | None:
        return next((c for c in self.children if c.role == role and c.index == index), None)

    def alive(self, role: str, index: int = 0) -> bool:
        child = self.find(role, index)
        return child is not None and child.handle.is_alive()

    def any_alive(self) -> bool:
        return any(c.handle.is_alive() for c in self.children)

    def check(self, told_to_stop: Callable[[str], bool],
              restarts_allowed: Callable[[str], bool]) -> str | None:
        """Look at every role once: mark the living running, restart a dead role the policy
        restarts, and return the fault that ends the run, if one does."""
        fatal = None
        for child in self.children:
            if child.handle.is_alive():
                if child.state in ("starting", "restarting"):
                    child.state = "running"
                continue
            if child.state in ("exited", "failed"):
                continue
            code = child.handle.exitcode
            if told_to_stop(child.role) and code == 0:
                child.state = "exited"
            elif child.role in RESTARTED_ROLES and restarts_allowed(child.role):
                fatal = self._restart(child, code) or fatal
            else:
                child.state = "failed" if code else "exited"
                fatal = fatal or f"{child.role} process exited unexpectedly (exit code {code})"
        return fatal

    def _restart(self, child: Child, code: int | None) -> str | None:
        now = time.monotonic()
        child.restart_times.append(now)
        recent = sum(1 for t in child.restart_times if now - t < 60.0)
        limit = self.stop.max_restarts_per_minute
        if recent > limit:
            child.state = "failed"
            return (f"{child.name} died {recent} times within a minute "
                    f"(stop.max_restarts_per_minute = {limit})")
        child.restarts += 1
        child.state = "restarting"
        self.log(f"{child.name} died (exit code {code}); restart #{child.restarts}", "warning")
        child.handle = self.backend.start(
            self.restart_recipe(child.role, child.index, child.restarts))
        return None
