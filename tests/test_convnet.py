"""Conv Q-networks: the NumPy forward pass (simulators) equals the Keras model (learner) on the
same flat weights, the Policy acts on it by the MLP's rule, and specs read old and new dicts."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from d3q_core.algo.acting import Policy
from d3q_core.algo.qnet import NETWORKS, NumpyQNet, QNetSpec, init_weights, unflatten

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NATURE = QNetSpec((4, 84, 84), 6, NETWORKS["nature"][1], True, NETWORKS["nature"][0],
                  channels_first=True, obs_scale=1 / 255)
MINATAR = QNetSpec((10, 10, 4), 5, NETWORKS["minatar"][1], False, NETWORKS["minatar"][0])
SPECS = {
    "mlp": QNetSpec(4, 2),
    "nature": NATURE,
    "minatar": MINATAR,
    "mlp_over_frames": QNetSpec((10, 10, 4), 3, (16,), True, obs_scale=0.5),
    # odd shapes: a stride that does not divide the kernel, unread last rows, no hidden layer
    "odd_stack": QNetSpec((3, 23, 20), 4, (8,), False, ((6, 5, 2), (4, 2, 2)),
                          channels_first=True, obs_scale=0.1),
    "odd_channels_last": QNetSpec((17, 22, 2), 3, (), True, ((5, 4, 2),)),
}


def observations(spec: QNetSpec, rows: int, seed: int = 0) -> np.ndarray:
    """Atari-like uint8 frames, MinAtar-like booleans, or CartPole-like floats."""
    rng = np.random.default_rng(seed)
    if spec.obs_scale != 1.0 and spec.conv:
        return rng.integers(0, 256, (rows, *spec.obs_shape), dtype=np.uint8)
    if len(spec.obs_shape) == 3:
        return rng.random((rows, *spec.obs_shape)) < 0.3
    return rng.normal(size=(rows, *spec.obs_shape)).astype(np.float32)


def weights(spec: QNetSpec, seed: int = 0) -> np.ndarray:
    """Keras' initialization, with biases made nonzero so they are checked too."""
    flat = init_weights(spec, np.random.default_rng(seed))
    return flat + np.random.default_rng(seed + 1).normal(0, 0.02, flat.size).astype(np.float32)


def reference_q(spec: QNetSpec, flat: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """The network written out plainly in float64, as the layout defines it."""
    w = unflatten(spec, flat.astype(np.float64))
    x = obs.astype(np.float64) * spec.obs_scale
    if spec.channels_first:
        x = x.transpose(0, 2, 3, 1)
    i = 0
    for _, k, s in spec.conv:
        patches = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]  # b h w c kh kw
        x = np.maximum(np.einsum("bhwcij,ijcf->bhwf", patches, w[i]) + w[i + 1], 0)
        i += 2
    x = x.reshape(len(x), -1)
    for _ in spec.hidden:
        x = np.maximum(x @ w[i] + w[i + 1], 0)
        i += 2
    if not spec.dueling:
        return x @ w[i] + w[i + 1]
    value, adv = x @ w[i] + w[i + 1], x @ w[i + 2] + w[i + 3]
    return value + adv - adv.mean(axis=1, keepdims=True)


@pytest.mark.parametrize("name", list(SPECS))
def test_numpy_forward_equals_the_written_out_network(name):
    spec = SPECS[name]
    flat = weights(spec)
    net = NumpyQNet(spec, flat)
    rows = (net.trunk.chunk if net.trunk else 16) + 7  # the trunk in passes, one shorter
    obs = observations(spec, rows)
    expect = reference_q(spec, flat, obs)
    assert np.allclose(net.q_values(obs), expect, rtol=1e-4, atol=1e-5)
    assert np.allclose(net.q_values(obs[:5], reuse=True), expect[:5], rtol=1e-4, atol=1e-5)
    assert np.allclose(net.q_values(obs[5:10], reuse=True), expect[5:10], rtol=1e-4, atol=1e-5)


def test_layout_sizes_and_conv_initialization():
    assert NATURE.conv_shapes() == [(84, 84, 4), (20, 20, 32), (9, 9, 64), (7, 7, 64)]
    assert NATURE.feature_dim == 7 * 7 * 64
    assert dict(NATURE.layout())["conv0/kernel"] == (8, 8, 4, 32)
    assert dict(NATURE.layout())["hidden0/kernel"] == (3136, 512)
    assert dict(MINATAR.layout())["hidden0/kernel"] == (8 * 8 * 16, 128)
    kernel = unflatten(NATURE, init_weights(NATURE, np.random.default_rng(0)))[0]
    limit = np.sqrt(6 / (8 * 8 * 4 + 8 * 8 * 32))  # Glorot: fans count the receptive field
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.99 * limit
    with pytest.raises(ValueError, match="3-D"):
        QNetSpec(4, 2, conv=((16, 3, 1),))
    with pytest.raises(ValueError, match="leave nothing"):
        QNetSpec((4, 4, 1), 2, conv=((16, 5, 1),))


def test_spec_dicts_old_and_new():
    old = {"obs_dim": 4, "n_actions": 2, "hidden": [128, 128], "dueling": True}
    assert QNetSpec.from_dict(old) == QNetSpec(4, 2)
    assert QNetSpec(4, 2).obs_shape == (4,) and QNetSpec(4, 2).obs_dim == 4
    for spec in SPECS.values():
        again = QNetSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec and hash(again) == hash(spec)
    assert QNetSpec(4, 2).to_dict()["obs_dim"] == 4  # still there for readers of the old format


@pytest.mark.parametrize("name", ["nature", "minatar", "mlp_over_frames"])
def test_policy_acts_on_a_conv_net_by_the_mlp_rule(name):
    spec = SPECS[name]
    k = 12
    flat = weights(spec)
    net = NumpyQNet(spec, flat)
    policy = Policy(net, k)
    obs = observations(spec, k, seed=3)
    u = np.random.default_rng(4).random(k)
    greedy = policy.act(obs, u, np.zeros(k)).copy()
    q = net.q_values(obs)
    assert np.allclose(policy.q, q, rtol=1e-5, atol=1e-6)
    assert np.array_equal(greedy, q.argmax(axis=1))
    eps = np.where(np.arange(k) % 2 == 0, 0.9, 0.0)
    actions = policy.act(obs, u, eps)
    explored = u < eps
    assert explored.any()
    expect = np.where(explored, np.minimum((u / np.where(explored, eps, 1) * spec.n_actions)
                                           .astype(np.int64), spec.n_actions - 1), greedy)
    assert np.array_equal(actions, expect)
    net.load(flat * 1.5)  # new parameters are picked up
    policy.act(obs, u, np.zeros(k))
    assert np.allclose(policy.q, net.q_values(obs), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def model_api():
    pytest.importorskip("tensorflow")
    from d3q_core.algo import model

    return model


@pytest.mark.parametrize("name", list(SPECS))
def test_keras_equals_numpy_on_the_same_weights(model_api, name):
    spec = SPECS[name]
    model = model_api.build_q_model(spec)
    assert model.count_params() == spec.n_params
    flat = weights(spec)
    model_api.set_flat(model, spec, flat)
    assert np.array_equal(model_api.get_flat(model, spec), flat)
    obs = observations(spec, 9, seed=5)
    # what the learner feeds: uint8 to a conv net (booleans as 0/1), float32 to an MLP
    obs = obs.astype(np.uint8 if spec.conv else np.float32)
    assert model.inputs[0].dtype == ("uint8" if spec.conv else "float32")
    keras_q = np.asarray(model(obs))
    assert keras_q.dtype == np.float32
    assert np.allclose(NumpyQNet(spec, flat).q_values(obs), keras_q, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", [NATURE, MINATAR], ids=["nature", "minatar"])
def test_mixed_precision_keeps_float32_weights_and_output(model_api, spec):
    flat = weights(spec)
    model = model_api.build_q_model(spec, mixed_precision=True)
    assert model.count_params() == spec.n_params
    assert model.get_layer("conv0").compute_dtype == "bfloat16"
    model_api.set_flat(model, spec, flat)
    assert all(v.dtype == "float32" for v in model_api.ordered_variables(model, spec))
    assert np.array_equal(model_api.get_flat(model, spec), flat)
    obs = observations(spec, 6, seed=6).astype(np.uint8)
    q = np.asarray(model(obs))
    expect = NumpyQNet(spec, flat).q_values(obs)
    assert q.dtype == np.float32
    assert np.allclose(q, expect, rtol=2e-2, atol=2e-2 * np.abs(expect).max())
