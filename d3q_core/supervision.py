"""Supervision for the orchestrator: restarts of dead simulators, the stop rules, and the
stall watchdog that names the stuck stage. A mixin: it reads and writes the Orchestrator's
state (children, counters, run state, config)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from d3q_core.orchestrator import Child


class Supervision:
    def _supervise(self) -> None:
        for child in self.children:
            if child.process.is_alive():
                if child.state in ("starting", "restarting"):
                    child.state = "running"
                continue
            if child.state in ("exited", "failed"):
                continue
            code = child.process.exitcode
            told_to_stop = self.stop_all.is_set() or (
                self.stop_sims.is_set() and child.role == "simulator") or (
                child.role == "learner" and self.state.goal_eval is not None)
            if told_to_stop and code == 0:
                child.state = "exited"
            elif child.role == "simulator" and not self.stop_sims.is_set():
                self._restart_simulator(child, code)
            else:
                child.state = "failed" if code else "exited"
                if self._fatal is None:
                    self._fatal = f"{child.role} process exited unexpectedly (exit code {code})"
                    self.log(self._fatal, "error")

    def _restart_simulator(self, child: Child, code: int | None) -> None:
        now = time.monotonic()
        child.restart_times.append(now)
        recent = sum(1 for t in child.restart_times if now - t < 60.0)
        limit = self.config.stop.max_restarts_per_minute
        if recent > limit:
            child.state = "failed"
            self._fatal = (f"simulator {child.index} died {recent} times within a minute "
                           f"(stop.max_restarts_per_minute = {limit})")
            self.log(self._fatal, "error")
            return
        child.restarts += 1
        child.state = "restarting"
        self.log(f"simulator {child.index} died (exit code {code}); restart #{child.restarts}",
                 "warning")
        child.process = self._start_simulator(child.index, child.restarts)

    def _stop_reason(self) -> str | None:
        st, stop = self.state, self.config.stop
        if self._fatal is not None:
            return "error"
        if st.goal_eval is not None:
            # wait for the confirmation (and the learner's final checkpoint) a bounded time
            learner = self._child("learner")
            waited = st.elapsed() - st.goal_eval.elapsed
            if st.confirmation is not None and not learner.process.is_alive():
                return "goal"
            if waited > 20:
                missing = "the confirmation" if st.confirmation is None else "the learner's exit"
                self.log(f"gave up waiting for {missing} after {waited:.0f}s", "warning")
                return "goal"
            return None
        if self._stop_request is not None:
            return self._stop_request
        if stop.max_seconds and st.elapsed() >= stop.max_seconds:
            return "max_seconds"
        if stop.max_learner_samples and self.counters.learner_samples >= stop.max_learner_samples:
            return "max_learner_samples"
        if stop.max_env_steps and self.counters.env_steps >= stop.max_env_steps:
            return "max_env_steps"
        return self._watch_stall()

    def _watch_stall(self) -> str | None:
        """Name the stuck stage when learner samples stop growing while nothing is paused."""
        st, stop = self.state, self.config.stop
        now, samples = time.monotonic(), self.counters.learner_samples
        if (self._paused or samples != self._progress[1] or not st.learner_info
                or not self.replay_ready.is_set()):
            self._progress = (now, samples)
            if st.stall:
                self.log("training resumed", "info")
            st.stall = None
            return None
        idle = now - self._progress[0]
        if idle < stop.stall_warn_seconds:
            return None
        r = st.stats("replay")
        if r.get("insert_rate", 0.0) <= 0.0 and not r.get("waiting_insert"):
            stage = "no experiences arriving from the simulators"
        elif r.get("sample_rate", 0.0) <= 0.0:
            stage = "the replay is not serving sample batches"
        else:
            stage = "the learner is not consuming sample batches"
        if st.stall != stage:
            st.stall = stage
            self.log(f"stalled {idle:.0f}s: {stage}", "warning")
        if idle >= stop.stall_stop_seconds:
            self._fatal = f"stalled for {idle:.0f}s: {stage}"
            return "stalled"
        return None
