"""How a run ended: result.json's summary, the exit code, and the goal's weights saved as
best.npz."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from d3q_core.algo.qnet import QNetSpec
from d3q_core.config import Config
from d3q_core.exitcodes import EXIT_FAULT, EXIT_GOAL, EXIT_INTERRUPTED, EXIT_LIMIT
from d3q_core.roles.messages import Confirmed
from d3q_core.run.runstate import RunState
from d3q_core.run.supervision import Child
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


def run_summary(st: RunState, config: Config, *, env_id: str, goal: float, error: str | None,
                learner_samples: int, env_steps: int, simulators: int, roles: list[Child],
                resumed_from: Path | None, timeline: dict, peak_memory: int) -> dict:
    """result.json's fields, but the exit code (write_result adds it)."""
    reached, c = st.goal_eval, st.confirmation
    sim0, learner = st.stats("simulator"), st.stats("learner")
    return {
        "solved": reached is not None,
        "stop_reason": "goal" if reached is not None else st.stop_reason or "error",
        "error": error,
        "env_id": env_id,
        "goal": goal if math.isfinite(goal) else None,
        "seconds_to_goal": reached.elapsed if reached else None,
        "learner_samples_at_goal": reached.learner_samples if reached else None,
        "env_steps_at_goal": reached.env_steps if reached else None,
        "best_eval_mean": st.best_eval,
        "confirmed_eval_mean": c.mean if c else None,
        "confirmed_eval_min": c.min if c else None,
        "wall_seconds": st.elapsed(),
        "seed": config.run.seed,
        "learner_samples": learner_samples,
        "env_steps": env_steps,
        "simulators": simulators,
        "restarts": {r.name: r.restarts for r in roles if r.restarts},
        "backend": config.cluster.backend,
        "nodes": {r.name: r.handle.node for r in roles},  # where each role ran
        "last_checkpoint": st.last_checkpoint,
        "evals": st.evals.as_dicts(),  # thinned past EVAL_KEEP points
        "evaluations": st.evals.count,
        "resumed_from": str(resumed_from) if resumed_from else None,
        "timeline": timeline,
        "peak_memory_bytes": peak_memory,
        "learner_samples_per_s": learner.samples_per_s if learner else None,
        "learner_wait_fraction": learner.wait_fraction if learner else None,
        "param_latency_s": sim0.param_latency if sim0 else None,
    }


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
