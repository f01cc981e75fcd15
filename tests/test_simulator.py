"""Simulator pieces: Ape-X epsilons, TD-error priorities, and a few real env steps."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.config import build_config
from d3q_core.qnet import NumpyQNet, QNetSpec, init_weights
from d3q_core.simulator import Simulator, ape_x_epsilons, simulator_epsilons, td_errors


def test_ape_x_epsilon_schedule():
    eps = ape_x_epsilons(0.4, 7.0, 8)
    assert eps[0] == pytest.approx(0.4) and eps[-1] == pytest.approx(0.4**8)
    assert np.all(np.diff(eps) < 0)
    assert ape_x_epsilons(0.4, 7.0, 1) == pytest.approx([0.4])


def test_per_env_spreads_over_all_copies_and_per_simulator_is_flat():
    cfg = build_config(None, ["simulators.envs_per_simulator=4"])
    e0, e1 = simulator_epsilons(cfg, 0, 2), simulator_epsilons(cfg, 1, 2)
    assert np.allclose(np.concatenate([e0, e1]), ape_x_epsilons(0.4, 7.0, 8))
    cfg = build_config(
        None, ["simulators.envs_per_simulator=4", "simulators.epsilon_per=simulator"]
    )
    assert np.allclose(simulator_epsilons(cfg, 1, 2), 0.4**8)


def test_td_errors_match_a_hand_computation():
    spec = QNetSpec(4, 2, (8,), dueling=False)
    net = NumpyQNet(spec, init_weights(spec, np.random.default_rng(0)))
    from d3q_core.transitions import transition_dtype

    rec = np.zeros(3, transition_dtype(4))
    rng = np.random.default_rng(1)
    rec["obs"], rec["next_obs"] = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    rec["action"], rec["reward"], rec["discount"] = [0, 1, 1], [1.0, 0.0, 2.0], [0.9, 0.0, 0.5]
    q, qn = net.q_values(rec["obs"]), net.q_values(rec["next_obs"])
    expect = np.abs(rec["reward"] + rec["discount"] * qn.max(1) - q[np.arange(3), rec["action"]])
    assert np.allclose(td_errors(net, rec), expect, atol=1e-5)


def test_simulator_steps_produce_valid_transitions():
    cfg = build_config(None, ["simulators.envs_per_simulator=8"])
    spec = QNetSpec(4, 2, (16,), True)
    sim = Simulator(cfg, spec, index=0, n_simulators=1, seed=3)
    records, steps, episodes = [], 0, 0
    for _ in range(200):
        r, s, e = sim.step(warmup=True)
        records.append(r)
        steps += s
        episodes += e
    rec = np.concatenate(records)
    assert episodes > 0 and steps > 8 * 150  # reset steps are not counted
    allowed = np.array([0.0, 0.99, 0.99**2, 0.99**3])
    assert np.all(np.isclose(rec["discount"][:, None], allowed[None, :], atol=1e-6).any(axis=1))
    # CartPole pays 1 per step: an n-step return is at most 1 + g + g^2
    assert rec["reward"].max() <= 1 + 0.99 + 0.99**2 + 1e-5
    # terminal transitions exist and do not bootstrap
    assert (rec["discount"] == 0).sum() > 0
