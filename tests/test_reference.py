"""The one-process Ape-X loop (d3q_core.algo.reference) learns CartPole from the same pieces
the roles use."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorflow")

from d3q_core.algo.reference import train  # noqa: E402
from d3q_core.config import build_config  # noqa: E402


def test_the_reference_loop_learns_cartpole_on_a_small_budget():
    cfg = build_config(None, ["learner.devices=cpu", "run.seed=0"])
    lines: list[str] = []
    history = train(cfg, max_env_steps=60_000, log=lines.append)
    means = [mean for _, mean in history]
    assert len(history) >= 5 and len(lines) == len(history)
    assert [s for s, _ in history] == sorted(s for s, _ in history)
    # an untrained greedy policy lasts ~10 steps, random play ~22: 90 means it has learned
    assert max(means) >= 90, means
    assert means[0] < max(means)


def test_the_reference_loop_stops_at_the_goal():
    cfg = build_config(None, ["learner.devices=cpu", "evaluation.every_learner_samples=4096"])
    history = train(cfg, max_env_steps=20_000, goal=0.0, log=lambda _: None)
    assert len(history) == 1 and history[0][1] >= 0.0
