"""The one entry point of every process the local backend starts: set the process up, build
the role from its recipe, open its ports, run it, report a failure, leave."""

from __future__ import annotations

from typing import Any

from d3q_core.backends.local.ports import QueueEvents
from d3q_core.backends.local.process import child_setup, flush_and_exit
from d3q_core.roles.messages import Failed


def run_role(title: str, niceness: int, recipe: Any, plan: Any) -> None:
    """Process target (spawn). `recipe` is a RoleRecipe, `plan` the role's port plan."""
    child_setup(title, out_queues=(plan.events,), niceness=niceness)
    code = 1
    try:
        role = recipe.make()
        code = role.run(plan.open())
    except Exception as exc:  # the run's supervision policy decides what follows
        QueueEvents(plan.events, recipe.role, recipe.index).emit(
            Failed(f"{type(exc).__name__}: {exc}"))
        code = 1
    flush_and_exit(int(code), (plan.events,))
