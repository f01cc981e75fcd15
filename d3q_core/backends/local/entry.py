"""The one entry point of every process the local backend starts: set the process up, build
the role from its recipe, open its ports, run it, report a failure, leave."""

from __future__ import annotations

from typing import Any

from d3q_core.backends.local.ports import PipeEvents
from d3q_core.backends.local.process import child_setup, flush_and_exit
from d3q_core.roles.messages import Failed


def run_role(title: str, niceness: int, output: str | None, recipe: Any, plan: Any) -> None:
    """Process target (spawn). `recipe` is a RoleRecipe, `plan` the role's port plan,
    `output` the file its stdout and stderr go to."""
    child_setup(title, niceness=niceness, output=output)
    code = 1
    try:
        role = recipe.make()
        code = role.run(plan.open())
    except Exception as exc:  # the run's supervision policy decides what follows
        PipeEvents(plan.events, recipe.role, recipe.index).emit(
            Failed(f"{type(exc).__name__}: {exc}"), wait=True)
        code = 1
    flush_and_exit(int(code))
