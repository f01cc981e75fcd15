"""Where a resumed run starts from: the newest checkpoint that reads back whole (refused if it
was saved for another env or network), and the evaluation history up to it. Also the small
run_state.json written beside each checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from d3q_core.algo.qnet import QNetSpec
from d3q_core.storage.atomic import write_text_atomic
from d3q_core.storage.checkpoint import (
    CheckpointError,
    check_compatible,
    load_checkpoint,
    newest_checkpoint,
)
from d3q_core.storage.rundir import RunDir


def load_resume_point(rundir: RunDir, env_id: str, spec: QNetSpec) -> tuple[Path, dict]:
    """The checkpoint to resume from and its metadata; CheckpointError (one line) if none."""
    ckpt = newest_checkpoint(rundir.path)
    if ckpt is None:
        raise CheckpointError(f"{rundir.checkpoints}: no loadable checkpoint to resume")
    _, meta = load_checkpoint(ckpt)
    check_compatible(meta, env_id, spec, path=ckpt)
    return ckpt, meta


def resumed_evals(rundir: RunDir, learner_samples: int) -> list[dict]:
    """The evaluation history up to the resume checkpoint's learner samples (a resumed run
    has no evaluations of parameters it never had); evals.jsonl keeps just those."""
    records = rundir.read_evals(learner_samples)
    if not records and not rundir.evals_path.exists():  # a run from before evals.jsonl
        try:
            saved = json.loads((rundir.path / "run_state.json").read_text())
            records = [e for e in saved.get("evals", [])
                       if e.get("learner_samples", 0) <= learner_samples]
        except (OSError, ValueError, AttributeError):
            records = []
    rundir.rewrite_evals(records)
    return records


def write_run_state(rundir: RunDir, state: dict, log: Callable[[str, str], None]) -> None:
    """What the learner's checkpoint does not know, for someone reading the directory (the
    evaluations themselves are in evals.jsonl, appended as they come). Written at each
    checkpoint and once more at shutdown."""
    try:
        write_text_atomic(rundir.path / "run_state.json", json.dumps(state))
    except OSError as exc:
        log(f"cannot write run_state.json: {exc}", "error")
