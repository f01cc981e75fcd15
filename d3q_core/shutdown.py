"""Shutdown for the orchestrator: stop the children in order (learner's final checkpoint,
replay snapshot, then everyone), read their last messages without risking a hang, and write
result.json. A mixin over the Orchestrator's state."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from d3q_core import snapshot as snap
from d3q_core.checkpoint import save_checkpoint
from d3q_core.runstate import Confirmation
from d3q_core.snapshot import Snapshot

EXIT_GOAL, EXIT_LIMIT, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class RunResult:
    solved: bool
    stop_reason: str
    exit_code: int
    error: str | None = None
    summary: dict = field(default_factory=dict)


class Shutdown:
    def _shutdown(self, on_snapshot: Callable[[Snapshot], None] | None) -> RunResult:
        st = self.state
        st.phase = snap.PHASE_STOPPING
        self.stop_sims.set()
        learner = self._child("learner") if self.children else None
        if learner is not None and learner.process.is_alive() and st.goal_eval is None:
            final = st.stop_reason not in ("error", "stalled")
            self._send_learner(("stop", final))
        deadline = time.monotonic() + 15.0
        if self._abort:
            self.stop_all.set()
        while learner is not None and learner.process.is_alive() and time.monotonic() < deadline:
            self._drain(timeout=0.05)
        if self.config.replay.snapshot and not self._abort:
            deadline = time.monotonic() + 15.0
            while not self._replay_saved.is_set() and time.monotonic() < deadline \
                    and self._child("replay").process.is_alive():
                self._drain(timeout=0.05)
        self.stop_all.set()
        deadline = time.monotonic() + (0.5 if self._abort else 5.0)
        while any(c.process.is_alive() for c in self.children) and time.monotonic() < deadline:
            self._drain(timeout=0.02)
        for c in self.children:
            if c.process.is_alive():
                c.process.terminate()
        for c in self.children:
            c.process.join(timeout=2.0)
            if c.process.is_alive():
                c.process.kill()
                c.process.join(timeout=2.0)
            if c.state not in ("failed",):
                c.state = "exited"
        self._drain_all()
        if st.last_checkpoint is not None:
            self._write_run_state()
        for q in (self.q_stats, self.q_learner_cmd, self.q_replay_cmd):
            q.close()
            q.cancel_join_thread()
        result = self._result()
        st.phase = snap.PHASE_GOAL if result.solved else snap.PHASE_STOPPED
        self._emit(on_snapshot)
        self._tb.close()
        return result

    def _drain_all(self) -> None:
        """Read the last status messages once every child is gone. A child terminated in
        the middle of a put leaves half a message in the pipe, on which a plain read blocks
        forever, so the reading happens in a daemon thread given one second. The data queues
        are not read at all: nothing in them matters any more."""
        got: list[tuple] = []

        def read() -> None:
            while True:
                try:
                    got.append(self.q_stats.get_nowait())
                except (queue.Empty, OSError, EOFError, ValueError):
                    return

        reader = threading.Thread(target=read, name="drain-stats", daemon=True)
        reader.start()
        reader.join(timeout=1.0)
        for msg in list(got):
            self._handle(msg)

    def _result(self) -> RunResult:
        st, reason = self.state, self.state.stop_reason or "error"
        solved = st.goal_eval is not None
        if solved and st.confirmation is not None:
            self._save_best(st.confirmation)
        goal = st.goal_eval
        summary = {
            "solved": solved,
            "stop_reason": "goal" if solved else reason,
            "error": self._fatal,
            "env_id": self.env_id,
            "goal": self.goal,
            "seconds_to_goal": goal.elapsed if goal else None,
            "learner_samples_at_goal": goal.learner_samples if goal else None,
            "env_steps_at_goal": goal.env_steps if goal else None,
            "best_eval_mean": st.best_eval,
            "confirmed_eval_mean": st.confirmation.mean if st.confirmation else None,
            "confirmed_eval_min": st.confirmation.min if st.confirmation else None,
            "wall_seconds": st.elapsed(),
            "seed": self.config.run.seed,
            "learner_samples": self.counters.learner_samples,
            "env_steps": self.counters.env_steps,
            "simulators": self.n_simulators,
            "last_checkpoint": st.last_checkpoint,
            "evals": [e.__dict__ for e in st.evals],
            "resumed_from": str(self.resume_checkpoint) if self.resume_checkpoint else None,
            "timeline": self.timeline,
            "peak_memory_bytes": self.peak_memory,
            "learner_samples_per_s": st.stats("learner").get("samples_per_s"),
            "learner_wait_fraction": st.stats("learner").get("wait_fraction"),
            "param_latency_s": st.stats("simulator").get("param_latency"),
        }
        try:
            self.rundir.write_result(summary)
        except OSError as exc:
            self.log(f"cannot write result.json: {exc}", "error")
        if solved:
            code = EXIT_GOAL
        elif reason in ("interrupted", "quit"):
            code = EXIT_INTERRUPTED
        else:
            code = EXIT_LIMIT
        return RunResult(solved, summary["stop_reason"], code, self._fatal, summary)

    def _save_best(self, c: Confirmation) -> None:
        meta = {"version": c.version, "learner_samples": c.learner_samples,
                "env_steps": c.env_steps, "learner_steps": 0, "env_id": self.env_id,
                "spec": self.spec.to_dict(), "confirmed_eval_mean": c.mean}
        try:
            path = save_checkpoint(self.rundir.checkpoints, {"online": c.weights}, meta,
                                   name="best.npz")
            self.log(f"goal parameters saved: {path}")
        except OSError as exc:
            self.log(f"cannot save best checkpoint: {exc}", "error")
