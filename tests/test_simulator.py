"""Simulator pieces: Ape-X epsilons, TD-error priorities, and a few real env steps."""

from __future__ import annotations

import numpy as np
import pytest

from d3q_core.algo.exploration import ape_x_epsilons, simulator_epsilons
from d3q_core.algo.qnet import NumpyQNet, QNetSpec, init_weights
from d3q_core.backends.local.process import spawn_context
from d3q_core.backends.local.shared import ParamStore, SharedCounters
from d3q_core.config import build_config
from d3q_core.roles.ports import SimulatorPorts
from d3q_core.roles.simulator import Simulator, td_errors


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
    from d3q_core.algo.transitions import transition_dtype

    rec = np.zeros(3, transition_dtype(4))
    rng = np.random.default_rng(1)
    rec["obs"], rec["next_obs"] = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    rec["action"], rec["reward"], rec["discount"] = [0, 1, 1], [1.0, 0.0, 2.0], [0.9, 0.0, 0.5]
    q, qn = net.q_values(rec["obs"]), net.q_values(rec["next_obs"])
    expect = np.abs(rec["reward"] + rec["discount"] * qn.max(1) - q[np.arange(3), rec["action"]])
    assert np.allclose(td_errors(net, rec), expect, atol=1e-5)


def channels(spec: QNetSpec) -> SimulatorPorts:
    """Parameters, counters and controls; no replay or events (iterate does not send)."""
    ctx = spawn_context()
    return SimulatorPorts(None, ParamStore(ctx, spec.n_params), SharedCounters(ctx, 1), None,
                          ctx.Event(), ctx.Event(), ctx.Event())


def run_batches(sim: Simulator, ch: SimulatorPorts, steps: int) -> list:
    return [out for out in (sim.iterate(ch) for _ in range(steps)) if out[0] is not None]


def test_simulator_steps_produce_valid_transitions():
    cfg = build_config(None, ["simulators.envs_per_simulator=8"])
    spec = QNetSpec(4, 2, (16,), True)
    sim, ch = Simulator(cfg, spec, index=0, n_simulators=1, seed=3), channels(spec)
    batches = run_batches(sim, ch, 200)
    assert sim.warmup and all(prios is None for _, prios in batches)  # no parameters yet
    rec = np.concatenate([b for b, _ in batches])
    assert sim.episodes > 0 and sim.env_steps > 8 * 150  # reset steps are not counted
    assert len(sim.recent_returns) == min(sim.episodes, 100)
    assert ch.counters.env_steps >= sim.env_steps - 8 * 8  # at most 8 vector steps behind
    sim.report_steps(ch.counters)
    assert (ch.counters.env_steps, ch.counters.episodes) == (sim.env_steps, sim.episodes)
    assert len(rec) <= sim.env_steps
    allowed = np.array([0.0, 0.99, 0.99**2, 0.99**3])
    assert np.all(np.isclose(rec["discount"][:, None], allowed[None, :], atol=1e-6).any(axis=1))
    # CartPole pays 1 per step: an n-step return is at most 1 + g + g^2
    assert rec["reward"].max() <= 1 + 0.99 + 0.99**2 + 1e-5
    # terminal transitions exist and do not bootstrap
    assert (rec["discount"] == 0).sum() > 0


@pytest.mark.parametrize("hidden", [(32, 16), (16,)])
def test_initial_priorities_are_the_td_errors_of_the_acting_parameters(hidden):
    """Priced from the Q-values the simulator acted on (in warm-up too), they equal the two
    forward passes of td_errors with the same parameters; batches holding a transition acted
    on before the first parameters go without priorities."""
    cfg = build_config(None, ["simulators.envs_per_simulator=8"])
    spec = QNetSpec(4, 2, hidden, True)
    sim, ch = Simulator(cfg, spec, index=0, n_simulators=1, seed=5), channels(spec)
    before = run_batches(sim, ch, 12)
    assert before and all(prios is None for _, prios in before)
    ch.params.publish(init_weights(spec, np.random.default_rng(0)) * 3, 0, 0)
    after = run_batches(sim, ch, 40)  # parameters from step 16 on, random actions
    ch.replay_ready.set()
    after += run_batches(sim, ch, 80)
    assert sim.version == 1 and not sim.warmup
    unpriced = [prios is None for _, prios in after]
    assert unpriced[0] and not any(unpriced[3:])  # n = 3: all priced within n + 1 steps
    priced = [(b, p) for b, p in after if p is not None]
    for batch, prios in priced:
        assert np.allclose(prios, td_errors(sim.qnet, batch), rtol=1e-5, atol=1e-5)
    rec = np.concatenate([b for b, _ in priced])
    assert (rec["discount"] == 0).any() and (rec["discount"] > 0).any()
    assert np.concatenate([p for _, p in priced]).std() > 0.1


def test_without_initial_priorities_no_batch_has_any():
    cfg = build_config(None, ["simulators.envs_per_simulator=4",
                              "simulators.initial_priorities=false"])
    spec = QNetSpec(4, 2, (8,), True)
    sim, ch = Simulator(cfg, spec, index=0, n_simulators=1, seed=1), channels(spec)
    ch.params.publish(init_weights(spec, np.random.default_rng(0)), 0, 0)
    batches = run_batches(sim, ch, 40)
    assert sim.version == 1 and batches and all(prios is None for _, prios in batches)
