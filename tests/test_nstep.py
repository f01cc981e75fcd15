"""n-step returns against hand-computed cases, including truncation, termination and resets."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.nstep import NStepBuffer
from d3q_core.transitions import transition_dtype

F, T = np.array([False]), np.array([True])


def push(buf, t, reward=1.0, term=F, trunc=F, valid=T):
    return buf.step(np.array([[t]], np.float32), np.array([t]), np.array([reward]),
                    np.array([[t + 1]], np.float32), term, trunc, valid)


def test_full_windows_emit_discounted_returns_and_gamma_n():
    buf = NStepBuffer(1, 3, 0.5, transition_dtype(1))
    assert push(buf, 0).size == 0 and push(buf, 1).size == 0
    out = push(buf, 2, reward=4.0)
    assert out.size == 1
    assert out["obs"][0, 0] == 0 and out["action"][0] == 0
    assert out["reward"][0] == pytest.approx(1 + 0.5 * 1 + 0.25 * 4)
    assert out["next_obs"][0, 0] == 3
    assert out["discount"][0] == pytest.approx(0.125)


def test_termination_flushes_everything_without_bootstrap():
    buf = NStepBuffer(1, 3, 0.5, transition_dtype(1))
    push(buf, 0, 1.0)
    push(buf, 1, 2.0)
    out = push(buf, 2, 4.0, term=T)
    assert [int(o) for o in out["action"]] == [0, 1, 2]
    assert out["reward"] == pytest.approx([1 + 1 + 1, 2 + 2, 4])
    assert out["discount"] == pytest.approx([0, 0, 0])


def test_truncation_bootstraps_from_the_final_observation():
    buf = NStepBuffer(1, 3, 0.5, transition_dtype(1))
    push(buf, 0, 1.0)
    out = push(buf, 1, 1.0, trunc=T)
    assert out["reward"] == pytest.approx([1.5, 1.0])
    assert out["discount"] == pytest.approx([0.25, 0.5])  # gamma^(steps to the end)
    assert np.all(out["next_obs"][:, 0] == 2)  # the truncation step's observation


def test_reset_step_is_dropped_and_no_transition_spans_two_episodes():
    buf = NStepBuffer(1, 2, 0.9, transition_dtype(1))
    push(buf, 0)
    push(buf, 1, term=T)
    # the autoreset step: its action was ignored by the env
    assert push(buf, 99, valid=F).size == 0
    assert push(buf, 10).size == 0  # a new episode needs n steps again
    out = push(buf, 11)
    assert out["obs"][0, 0] == 10 and out["next_obs"][0, 0] == 12


def test_copies_are_independent_in_one_vector_step():
    buf = NStepBuffer(2, 2, 1.0, transition_dtype(1))
    both = np.array([True, True])
    obs = np.array([[0], [100]], np.float32)
    buf.step(obs, np.array([0, 0]), np.array([1.0, 10.0]), obs + 1, ~both, ~both, both)
    out = buf.step(obs + 1, np.array([1, 1]), np.array([1.0, 10.0]), obs + 2,
                   np.array([False, True]), ~both, both)
    by_obs = {float(o[0]): r for o, r in zip(out["obs"], out["reward"], strict=True)}
    assert by_obs[0.0] == pytest.approx(2.0)  # copy 0: full 2-step window
    assert by_obs[100.0] == pytest.approx(20.0) and by_obs[101.0] == pytest.approx(10.0)
    assert len(out) == 3


def test_one_step_is_plain_q_learning():
    buf = NStepBuffer(1, 1, 0.99, transition_dtype(1))
    out = push(buf, 0, 2.0)
    assert out["reward"][0] == pytest.approx(2.0) and out["discount"][0] == pytest.approx(0.99)
