"""When a run stops: a pure function of the stop settings and what the run knows now, and the
stall watch that names the stuck stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from d3q_core.config import StopConfig
from d3q_core.snapshot import ReplayStats

# after the goal: how long to wait for the confirmation and the learner's final checkpoint
GOAL_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class RunView:
    """What the stop rules look at."""

    elapsed: float  # seconds since the command started
    learner_samples: int
    env_steps: int
    fatal: str | None = None  # a fault that ends the run
    stop_request: str | None = None  # quit, interrupted (from a face)
    goal_elapsed: float | None = None  # when an evaluation reached the goal
    confirmed: bool = False  # the goal's parameters were played again
    learner_alive: bool = True


def stop_reason(stop: StopConfig, v: RunView) -> str | None:
    """The reason to stop now, or None. A fault wins; once the goal is reached the run waits
    (a bounded time) for the confirmation and the learner's final checkpoint; then a face's
    request; then the limits."""
    if v.fatal is not None:
        return "error"
    if v.goal_elapsed is not None:
        done = v.confirmed and not v.learner_alive
        return "goal" if done or v.elapsed - v.goal_elapsed > GOAL_WAIT_SECONDS else None
    if v.stop_request is not None:
        return v.stop_request
    if stop.max_seconds and v.elapsed >= stop.max_seconds:
        return "max_seconds"
    if stop.max_learner_samples and v.learner_samples >= stop.max_learner_samples:
        return "max_learner_samples"
    if stop.max_env_steps and v.env_steps >= stop.max_env_steps:
        return "max_env_steps"
    return None


def stalled_stage(replay: ReplayStats | None, silent: dict[str, float] | None = None,
                  quiet_after: float = float("inf")) -> str:
    """Which stage holds training up, from the replay's newest stats and how long each role
    has been silent (seconds since its last message)."""
    silent = silent or {}
    for role in ("replay", "learner"):
        if silent.get(role, 0.0) >= quiet_after:
            return f"the {role} is not responding (no message for {silent[role]:.0f}s)"
    r = replay or ReplayStats()
    if r.insert_rate <= 0.0 and not r.waiting_insert:
        return "no experiences arriving from the simulators"
    if r.sample_rate <= 0.0 and not (r.in_flight_limit and
                                     r.batches_in_flight >= r.in_flight_limit):
        return "the replay is not serving sample batches"
    return "the learner is not consuming sample batches"


def startup_stage(learner_ready: bool, replay: ReplayStats | None, min_size: int) -> str:
    """What a run that has not started training yet still waits for."""
    if not learner_ready:
        return "the learner has not become ready"
    r = replay or ReplayStats()
    if r.insert_rate <= 0.0:
        return (f"the replay holds {r.size:,} of replay.min_size {min_size:,} transitions, "
                "no experiences arriving from the simulators")
    return f"the replay holds {r.size:,} of replay.min_size {min_size:,} transitions"


class StallWatch:
    """Learner samples must grow while training runs and nothing is paused: after
    `stop.stall_warn_seconds` without, the stuck stage is named; after
    `stop.stall_stop_seconds` the run ends instead of hanging."""

    def __init__(self, stop: StopConfig, log: Callable[[str, str], None]):
        self.stop, self.log = stop, log
        self.stage: str | None = None
        self._since = (0.0, -1)  # (monotonic time, learner samples) of the last progress

    def check(self, now: float, samples: int, watching: bool, replay: ReplayStats | None,
              silent: dict[str, float] | None = None) -> str | None:
        """`watching`: training has started and is not paused; `silent`: seconds since each
        role's last message. Returns a fault to end the run with, or None."""
        if not watching or samples != self._since[1]:
            self._since = (now, samples)
            if self.stage:
                self.log("training resumed", "info")
            self.stage = None
            return None
        idle = now - self._since[0]
        if idle < self.stop.stall_warn_seconds:
            return None
        stage = stalled_stage(replay, silent, self.stop.stall_warn_seconds)
        if self.stage != stage:
            self.stage = stage
            self.log(f"stalled {idle:.0f}s: {stage}", "warning")
        if idle >= self.stop.stall_stop_seconds:
            return f"stalled for {idle:.0f}s: {stage}"
        return None


class StartupWatch:
    """Until training starts (the learner ready and the replay at replay.min_size), the run
    names what it waits for after `stop.stall_warn_seconds` and ends after
    `stop.startup_timeout_seconds`: a learner that never becomes ready is a fault too."""

    def __init__(self, stop: StopConfig, min_size: int, log: Callable[[str, str], None]):
        self.stop, self.min_size, self.log = stop, min_size, log
        self.stage: str | None = None
        self._since: float | None = None

    def check(self, now: float, started: bool, learner_ready: bool,
              replay: ReplayStats | None, paused: bool = False) -> str | None:
        if started or paused or self._since is None:
            self._since, self.stage = (now if not started else None), None
            return None
        waited = now - self._since
        if waited < self.stop.stall_warn_seconds:
            return None
        stage = startup_stage(learner_ready, replay, self.min_size)
        if self.stage is None or stage.split(",")[0] != self.stage.split(",")[0]:
            self.log(f"not training after {waited:.0f}s: {stage}", "warning")
        self.stage = stage
        if waited >= self.stop.startup_timeout_seconds:
            return f"not training after {waited:.0f}s: {stage}"
        return None
