"""Versioned parameter broadcast through shared memory, and the Q-net's flat layout."""

from __future__ import annotations

import numpy as np

from d3q_core.algo.qnet import NumpyQNet, QNetSpec, init_weights, unflatten
from d3q_core.backends.local.process import spawn_context
from d3q_core.backends.local.shared import ParamStore, SharedCounters


def _reader(store: ParamStore, out) -> None:
    got = store.read(newer_than=0)
    out.put((got[0].sum(), got[1].version, got[1].learner_samples) if got else None)


def test_versions_increase_and_readers_see_only_newer():
    ctx = spawn_context()
    store = ParamStore(ctx, 10)
    assert store.read() is None
    v1 = store.publish(np.arange(10, dtype=np.float32), learner_samples=256, env_steps=1000)
    flat, meta = store.read()
    assert v1 == 1 and meta.version == 1 and meta.learner_samples == 256 and meta.env_steps == 1000
    assert np.array_equal(flat, np.arange(10))
    assert store.read(newer_than=1) is None
    store.publish(np.ones(10, np.float32), 512, 2000)
    assert store.read(newer_than=1)[1].version == 2


def test_a_spawned_process_reads_the_shared_weights():
    ctx = spawn_context()
    store = ParamStore(ctx, 1000)
    store.publish(np.full(1000, 2.0, np.float32), 7, 9)
    out = ctx.Queue()
    p = ctx.Process(target=_reader, args=(store, out))
    p.start()
    result = out.get(timeout=30)
    p.join(10)
    assert result == (2000.0, 1, 7)


def test_counters_sum_simulator_slots():
    c = SharedCounters(spawn_context(), 3)
    c.add_env_steps(0, 10, 1)
    c.add_env_steps(2, 5)
    c.set_learner(100, 4)
    assert (c.env_steps, c.episodes, c.learner_samples, c.learner_steps) == (15, 1, 100, 4)


def test_layout_and_numpy_forward_dueling():
    spec = QNetSpec(4, 2, (8, 8), dueling=True)
    flat = init_weights(spec, np.random.default_rng(0))
    assert flat.size == spec.n_params == 4 * 8 + 8 + 8 * 8 + 8 + 8 + 1 + 8 * 2 + 2
    w = unflatten(spec, flat)
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    h = np.maximum(np.maximum(obs @ w[0] + w[1], 0) @ w[2] + w[3], 0)
    v, a = h @ w[4] + w[5], h @ w[6] + w[7]
    expect = v + a - a.mean(axis=1, keepdims=True)
    net = NumpyQNet(spec, flat)
    assert np.allclose(net.q_values(obs), expect, atol=1e-5)
    assert np.array_equal(net.act(obs), expect.argmax(axis=1))
