"""The simulator's compiled policy against NumpyQNet, and its epsilon-greedy choice."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.algo.acting import Policy
from d3q_core.algo.qnet import NumpyQNet, QNetSpec, init_weights


@pytest.mark.parametrize(("hidden", "dueling"), [((32, 16), True), ((16,), False), ((), True),
                                                 ((8, 8, 8), False)])
def test_q_values_and_greedy_actions_equal_the_numpy_net(hidden, dueling):
    spec = QNetSpec(5, 3, hidden, dueling)
    flat = init_weights(spec, np.random.default_rng(0))
    flat += np.random.default_rng(1).normal(0, 0.1, flat.size).astype(np.float32)  # biases too
    net = NumpyQNet(spec, flat)
    policy = Policy(net, 16)
    obs = np.asfortranarray(np.random.default_rng(2).normal(size=(16, 5)).astype(np.float32))
    actions = policy.act(obs, np.random.default_rng(3).random(16), np.zeros(16))
    assert np.allclose(policy.q, net.q_values(obs), rtol=1e-5, atol=1e-5)
    assert np.array_equal(actions, net.q_values(obs).argmax(axis=1))
    net.load(flat * 2)  # new parameters are picked up
    policy.act(obs, np.zeros(16), np.zeros(16))
    assert np.allclose(policy.q, net.q_values(obs), rtol=1e-5, atol=1e-5)


def test_exploring_copies_act_uniformly_and_the_rest_greedily():
    spec = QNetSpec(4, 3, (8,), True)
    net = NumpyQNet(spec, init_weights(spec, np.random.default_rng(0)))
    k = 3000
    policy = Policy(net, k)
    obs = np.random.default_rng(1).normal(size=(k, 4)).astype(np.float32)
    u = np.random.default_rng(2).random(k)
    eps = np.where(np.arange(k) % 2 == 0, 0.3, 0.0)
    actions = policy.act(obs, u, eps).copy()
    greedy = net.q_values(obs).argmax(axis=1)
    explored = u < eps
    assert np.array_equal(actions[~explored], greedy[~explored])
    counts = np.bincount(actions[explored], minlength=3)
    assert explored.sum() > 350 and counts.min() > explored.sum() / 3 * 0.75
    everyone = policy.act(obs, u, np.ones(k))  # warm-up: epsilon 1
    assert np.bincount(everyone, minlength=3).min() > k / 3 * 0.85
    assert np.bincount(policy.act_at_random(u), minlength=3).min() > k / 3 * 0.85
