"""The TensorFlow learner: Keras equals the NumPy policy, the algorithm's targets, learning
on a fixed batch, checkpoint state, and one step on 2 logical devices equal to one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")

from d3q_core.algo.devices import make_strategy  # noqa: E402
from d3q_core.algo.model import get_flat, ordered_variables  # noqa: E402
from d3q_core.algo.qnet import NumpyQNet, QNetSpec, init_weights  # noqa: E402
from d3q_core.algo.trainer import Trainer  # noqa: E402
from d3q_core.config import build_config  # noqa: E402
from tests.learner_worker import MINATAR_SPEC, batch, frame_records  # noqa: E402

WORKER = [sys.executable, "-m", "tests.learner_worker"]


def trainer(spec: QNetSpec, *overrides: str) -> Trainer:
    cfg = build_config(None, ["learner.batch_size=64", *overrides])
    return Trainer(spec, cfg.learner, make_strategy("cpu")[0], seed=0)


@pytest.mark.parametrize("dueling", [True, False])
def test_numpy_forward_equals_keras(dueling):
    spec = QNetSpec(4, 3, (16, 8), dueling)
    t = trainer(spec, "learner.hidden=16,8", f"learner.dueling={dueling}")
    flat = init_weights(spec, np.random.default_rng(1))
    t.set_flat(flat)
    obs = np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32)
    keras_q = t.online(obs).numpy()
    assert np.allclose(NumpyQNet(spec, t.get_flat()).q_values(obs), keras_q, atol=1e-5)
    assert np.array_equal(t.get_flat(), flat)  # flattening follows the spec's layout


def test_double_dqn_target_by_hand():
    """Zero hidden weights make Q(s) = the output bias, whatever s: every number is known."""
    spec = QNetSpec(4, 2, (4,), dueling=False)
    t = trainer(spec, "learner.hidden=4", "learner.dueling=false", "learner.batch_size=2",
                "learner.learning_rate=1e-9", "learner.steps_per_call=1")
    online = np.zeros(spec.n_params, np.float32)
    target = np.zeros(spec.n_params, np.float32)
    online[-2:] = [1.0, 3.0]  # online prefers action 1
    target[-2:] = [10.0, 2.0]  # target would prefer action 0
    t.set_flat(online, target)
    obs = np.zeros((2, 4), np.float32)
    td, _, _ = t.train_step(obs, np.array([0, 1]), np.array([0.5, 0.5], np.float32), obs,
                            np.array([0.9, 0.0], np.float32), np.ones(2, np.float32))
    # row 0: target = 0.5 + 0.9 * Q_target(s', argmax Q_online) = 0.5 + 0.9 * 2; Q = 1
    # row 1: terminal, target = 0.5; Q = 3
    assert td == pytest.approx([abs(0.5 + 0.9 * 2.0 - 1.0), abs(0.5 - 3.0)], abs=1e-4)


def test_steps_on_a_fixed_batch_lower_the_td_error():
    spec = QNetSpec(4, 2, (32, 32), True)
    t = trainer(spec, "learner.hidden=32,32")
    b = batch(t.call_batch)
    first, loss0, _ = t.train_step(*b)
    before = t.get_flat()
    for _ in range(60):
        td, loss, _ = t.train_step(*b)
    assert loss < 0.5 * loss0 and td.mean() < 0.7 * first.mean()
    # the compiled flat read sees the trained weights, not the ones it was traced with
    now = np.concatenate([v.numpy().ravel() for v in ordered_variables(t.online, spec)])
    assert np.array_equal(t.get_flat(), now) and not np.array_equal(before, now)


def test_state_arrays_restore_training_exactly():
    spec = QNetSpec(4, 2, (16,), True)
    a = trainer(spec, "learner.hidden=16")
    b_ = batch(a.call_batch)
    for _ in range(5):
        a.train_step(*b_)
    state = a.state_arrays()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    b = trainer(spec, "learner.hidden=16")
    b.load_state_arrays(state)
    assert b.steps == a.steps
    td_a, loss_a, _ = a.train_step(*b_)
    td_b, loss_b, _ = b.train_step(*b_)
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert np.allclose(a.get_flat(), b.get_flat(), atol=1e-7)


def test_published_weights_are_those_each_call_and_each_load_leave():
    """get_flat hands out the weights the train call returned with its priorities: they must
    be the model's after that call's steps, and a load must not leave an older call's."""
    spec = QNetSpec(4, 2, (16,), True)
    t = trainer(spec, "learner.hidden=16")
    b_ = batch(t.call_batch)
    for _ in range(3):
        before = t.get_flat()
        t.train_step(*b_)
        after = t.get_flat()
        assert not np.array_equal(before, after)
        np.testing.assert_array_equal(after, get_flat(t.online, spec))
    fresh = init_weights(spec, np.random.default_rng(5))
    t.set_flat(fresh)
    np.testing.assert_array_equal(t.get_flat(), fresh)


def test_k_steps_in_one_call_equal_k_single_steps():
    """steps_per_call = 3 on 3G rows is step j on rows j, j+3, ...: the same weights, and
    each row's priority from the step that trained on it."""
    spec = QNetSpec(4, 2, (16, 16), True)
    fused = trainer(spec, "learner.hidden=16,16", "learner.steps_per_call=3",
                    "learner.target_sync_every=2", "learner.target_tau=0.5")
    single = trainer(spec, "learner.hidden=16,16", "learner.steps_per_call=1",
                     "learner.target_sync_every=2", "learner.target_tau=0.5")
    w0 = init_weights(spec, np.random.default_rng(3))
    fused.set_flat(w0)
    single.set_flat(w0)
    assert fused.call_batch == 3 * single.call_batch == 3 * 64
    for round_ in range(2):  # the second call crosses target syncs at odd step counts
        b = batch(fused.call_batch, seed=round_)
        td, loss, _ = fused.train_step(*b)
        tds, losses = np.zeros(fused.call_batch, np.float32), []
        for j in range(3):
            td_j, loss_j, _ = single.train_step(*(x[j::3] for x in b))
            tds[j::3] = td_j
            losses.append(loss_j)
        assert fused.steps == single.steps == 3 * (round_ + 1)
        assert np.allclose(td, tds, atol=1e-5)
        assert loss == pytest.approx(np.mean(losses), rel=1e-5)
        assert np.allclose(fused.get_flat(), single.get_flat(), atol=1e-6)
        assert np.allclose(fused.get_target_flat(), single.get_target_flat(), atol=1e-6)


def run_worker(*args: str) -> dict:
    out = subprocess.run([*WORKER, *args], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def device_pairs() -> dict:
    """Every 1-vs-2-device case from one fresh interpreter (see learner_worker.pairs)."""
    return run_worker("pairs")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("clip", [100.0, 0.05])  # unclipped, and clipping every step
def test_two_logical_devices_equal_one_device(clip, device_pairs):
    one, two = device_pairs[f"step-{clip}"]["one"], device_pairs[f"step-{clip}"]["two"]
    assert one["replicas"] == 1 and two["replicas"] == 2 and len(two["devices"]) == 2
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    assert two["mean_q"] == pytest.approx(one["mean_q"], rel=1e-5)
    assert np.allclose(two["td"], one["td"], atol=1e-5)  # priorities in the batch's order
    assert np.allclose(two["online"], one["online"], atol=1e-5)
    assert np.allclose(two["target"], one["target"], atol=1e-5)


@pytest.mark.timeout(300)
def test_a_cnn_on_two_logical_devices_equals_one_device(device_pairs):
    """The conv net's uint8 records split across replicas as the MLP's float32 ones do."""
    one, two = device_pairs["conv"]["one"], device_pairs["conv"]["two"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-4)
    assert np.allclose(two["td"], one["td"], atol=1e-4)
    assert np.allclose(two["online"], one["online"], atol=1e-5)


@pytest.mark.parametrize("mixed", [False, True])
def test_a_cnn_learns_a_fixed_batch_of_frames(mixed):
    """uint8 frames in, float inside the step: the TD error on a fixed batch falls (with
    bfloat16 compute too: float32 weights, Q-values and loss)."""
    spec = QNetSpec.from_dict(MINATAR_SPEC)
    t = trainer(spec, "learner.batch_size=32", "learner.learning_rate=3e-3",
                f"learner.mixed_precision={str(mixed).lower()}")
    records, weights = frame_records(t)
    assert t.record_dtype["obs"].base == np.uint8
    first, _, _ = t.train_records(records, weights)
    for _ in range(60):
        td, loss, _ = t.train_records(records, weights)
    assert np.isfinite(loss) and td.mean() < 0.5 * first.mean()
    assert t.get_flat().dtype == np.float32
    q = NumpyQNet(spec, t.get_flat()).q_values(records["obs"][:8])
    keras_q = np.asarray(t.online(records["obs"][:8]), np.float32)
    assert np.allclose(q, keras_q, atol=0.05 if mixed else 1e-4)


@pytest.mark.parametrize("devices, fragment", [("gpu", "no GPU"), ("gpu:0,1", "no GPU")])
def test_gpu_requests_without_gpus_name_the_setting(devices, fragment):
    err = run_worker("devices", devices)["error"]
    assert err and f"learner.devices = {devices!r}" in err and fragment in err
