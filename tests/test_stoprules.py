"""The stop rules (a pure function of the settings and the run's view) and the stall watch."""

from __future__ import annotations

import pytest

from d3q_core.config import StopConfig
from d3q_core.run.stoprules import (
    GOAL_WAIT_SECONDS,
    RunView,
    StallWatch,
    StartupWatch,
    stalled_stage,
    stop_reason,
)
from d3q_core.snapshot import ReplayStats

LIMITS = StopConfig(max_seconds=100.0, max_learner_samples=1000, max_env_steps=500)


def view(**kw) -> RunView:
    return RunView(**{"elapsed": 1.0, "learner_samples": 0, "env_steps": 0, **kw})


@pytest.mark.parametrize(("kw", "reason"), [
    ({}, None),
    ({"elapsed": 100.0}, "max_seconds"),
    ({"learner_samples": 1000}, "max_learner_samples"),
    ({"env_steps": 500}, "max_env_steps"),
    ({"stop_request": "quit", "elapsed": 200.0}, "quit"),  # a face's request before limits
    ({"fatal": "replay died", "stop_request": "quit"}, "error"),  # a fault wins
])
def test_limits_requests_and_faults(kw, reason):
    assert stop_reason(LIMITS, view(**kw)) == reason


def test_zero_means_no_limit():
    assert stop_reason(StopConfig(max_seconds=0.0), view(elapsed=1e9, learner_samples=10**12,
                                                         env_steps=10**12)) is None


def test_after_the_goal_the_run_waits_for_confirmation_and_learner_then_gives_up():
    at_goal = {"goal_elapsed": 10.0, "elapsed": 11.0, "env_steps": 10**6}  # past a limit
    assert stop_reason(LIMITS, view(**at_goal)) is None
    assert stop_reason(LIMITS, view(**at_goal, confirmed=True)) is None  # learner still saving
    assert stop_reason(LIMITS, view(**at_goal, confirmed=True, learner_alive=False)) == "goal"
    late = {**at_goal, "elapsed": 10.0 + GOAL_WAIT_SECONDS + 0.1}
    assert stop_reason(LIMITS, view(**late)) == "goal"


@pytest.mark.parametrize(("stats", "stage"), [
    (None, "no experiences arriving from the simulators"),
    (ReplayStats(insert_rate=0.0, waiting_insert=True, sample_rate=0.0),
     "the replay is not serving sample batches"),
    (ReplayStats(insert_rate=5.0, sample_rate=0.0), "the replay is not serving sample batches"),
    (ReplayStats(insert_rate=5.0, sample_rate=9.0), "the learner is not consuming sample batches"),
])
def test_the_stalled_stage_is_named_from_the_replay_stats(stats, stage):
    assert stalled_stage(stats) == stage


def test_a_learner_holding_every_batch_or_a_silent_role_is_named():
    held = ReplayStats(insert_rate=5.0, sample_rate=0.0, batches_in_flight=4, in_flight_limit=4)
    assert stalled_stage(held) == "the learner is not consuming sample batches"
    assert stalled_stage(held, {"learner": 9.0, "replay": 0.1}, quiet_after=5.0) == \
        "the learner is not responding (no message for 9s)"
    assert stalled_stage(held, {"replay": 7.0, "learner": 9.0}, quiet_after=5.0).startswith(
        "the replay is not responding")


def test_startup_watch_names_what_a_run_waits_for_and_ends_it():
    logs: list[tuple[str, str]] = []
    watch = StartupWatch(StopConfig(stall_warn_seconds=5.0, startup_timeout_seconds=20.0), 1000,
                         lambda text, level: logs.append((level, text)))
    assert watch.check(0.0, False, False, None) is None
    assert watch.check(6.0, False, False, None) is None
    assert watch.stage == "the learner has not become ready" and logs[-1][0] == "warning"
    filling = ReplayStats(size=300, insert_rate=50.0)
    assert watch.check(8.0, False, True, filling) is None
    assert watch.stage == "the replay holds 300 of replay.min_size 1,000 transitions"
    assert watch.check(21.0, False, True, ReplayStats(size=300)).endswith(
        "no experiences arriving from the simulators")
    assert watch.check(22.0, True, True, filling) is None and watch.stage is None
    assert watch.check(100.0, True, True, None) is None  # training started: no more watching


def test_stall_watch_warns_names_and_ends_and_forgets_on_progress():
    logs: list[tuple[str, str]] = []
    watch = StallWatch(StopConfig(stall_warn_seconds=5.0, stall_stop_seconds=10.0),
                       lambda text, level: logs.append((level, text)))
    replay = ReplayStats(insert_rate=1.0, sample_rate=1.0)
    assert watch.check(0.0, 100, True, replay) is None
    assert watch.check(4.0, 100, True, replay) is None and watch.stage is None
    assert watch.check(6.0, 100, True, replay) is None
    assert watch.stage == "the learner is not consuming sample batches"
    assert logs[-1][0] == "warning"
    assert watch.check(7.0, 100, False, replay) is None and watch.stage is None  # paused
    assert logs[-1] == ("info", "training resumed")
    assert watch.check(8.0, 100, True, replay) is None  # the clock restarted at 7.0
    assert watch.check(17.5, 100, True, replay).startswith("stalled for 10s")
    assert watch.check(18.0, 101, True, replay) is None and watch.stage is None
