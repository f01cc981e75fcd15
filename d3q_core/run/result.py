"""How a run ended: result.json's summary, the exit code, and the goal's weights saved as
best.npz."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from d3q_core.algo.qnet import QNetSpec
from d3q_core.exitcodes import EXIT_FAULT, EXIT_GOAL, EXIT_INTERRUPTED, EXIT_LIMIT
from d3q_core.roles.messages import Confirmed
from d3q_core.storage.checkpoint import save_checkpoint
from d3q_core.storage.rundir import RunDir


@dataclass
class RunResult:
    solved: bool
    stop_reason: str
    exit_code: int
    error: str | None = None
    summary: dict = field(default_factory=dict)


def exit_code(solved: bool, reason: str) -> int:
    if solved:
        return EXIT_GOAL
    if reason in ("interrupted", "quit"):
        return EXIT_INTERRUPTED
    if reason in ("error", "stalled"):
        return EXIT_FAULT
    return EXIT_LIMIT


def write_result(rundir: RunDir, summary: dict, error: str | None,
                 log: Callable[[str, str], None]) -> RunResult:
    """result.json with the exit code (atomic; a failure is logged, the result still
    returned)."""
    solved = bool(summary["solved"])
    reason = summary["stop_reason"]
    code = summary["exit_code"] = exit_code(solved, reason)
    try:
        rundir.write_result(summary)
    except OSError as exc:
        log(f"cannot write result.json: {exc}", "error")
    return RunResult(solved, reason, code, error, summary)


def save_best(rundir: RunDir, c: Confirmed, env_id: str, spec: QNetSpec,
              log: Callable[[str, str], None]) -> None:
    meta = {"version": c.version, "learner_samples": c.learner_samples,
            "env_steps": c.env_steps, "learner_steps": 0, "env_id": env_id,
            "spec": spec.to_dict(), "confirmed_eval_mean": c.mean}
    try:
        path = save_checkpoint(rundir.checkpoints, {"online": c.weights}, meta, name="best.npz")
        log(f"goal parameters saved: {path}", "info")
    except OSError as exc:
        log(f"cannot save best checkpoint: {exc}", "error")
