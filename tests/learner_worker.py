"""Runs learner checks in a fresh interpreter, where logical CPU devices can still be made
(TensorFlow fixes its devices when it first starts). Prints one JSON line."""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def batch(g: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.normal(size=(g, 4)).astype("f4"), rng.integers(0, 2, g).astype("i4"),
            rng.random(g).astype("f4"), rng.normal(size=(g, 4)).astype("f4"),
            np.where(rng.random(g) < 0.1, 0.0, 0.97).astype("f4"),
            rng.uniform(0.2, 1.0, g).astype("f4"))


def records_batch(trainer, seed: int = 0):
    """`batch` as the replay hands it to the learner: (transition records, weights)."""
    *fields, weights = batch(trainer.call_batch, seed)
    return trainer.records(*fields), weights


MINATAR_SPEC = {"obs_shape": [10, 10, 4], "n_actions": 3, "hidden": [32], "dueling": True,
                "conv": [[8, 3, 1]], "channels_first": False, "obs_scale": 1.0}


def frame_records(trainer, seed: int = 0):
    """uint8 frame records (MinAtar-like 0/1 cells) and weights, as a pixel replay sends."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = trainer.call_batch
    rec = np.zeros(n, trainer.record_dtype)
    rec["obs"] = rng.random(rec["obs"].shape) < 0.1
    rec["next_obs"] = rng.random(rec["next_obs"].shape) < 0.1
    rec["action"] = rng.integers(0, trainer.spec.n_actions, n)
    rec["reward"] = rng.normal(size=n)
    rec["discount"] = np.where(rng.random(n) < 0.1, 0.0, 0.97)
    return rec, rng.uniform(0.2, 1.0, n).astype("f4")


def conv_step(devices: str, per_replica: int) -> dict:
    """One train step of a small MinAtar-shaped CNN on uint8 records."""
    import numpy as np

    from d3q_core.algo.devices import make_strategy
    from d3q_core.algo.qnet import QNetSpec, init_weights
    from d3q_core.algo.trainer import Trainer
    from d3q_core.config import build_config

    cfg = build_config(None, [f"learner.batch_size={per_replica}", "learner.target_tau=1.0",
                              "learner.steps_per_call=2"])
    spec = QNetSpec.from_dict(MINATAR_SPEC)
    strategy, names = make_strategy(devices)
    t = Trainer(spec, cfg.learner, strategy, seed=0)
    w0 = init_weights(spec, np.random.default_rng(7))
    t.set_flat(w0, w0 * 0.5)
    td, loss, q = t.train_records(*frame_records(t))
    return {"devices": names, "replicas": t.replicas, "td": td.tolist(), "loss": loss,
            "mean_q": q, "online": t.get_flat().tolist(), "target": t.get_target_flat().tolist()}


def one_step(devices: str, per_replica: int, clip: float) -> dict:
    import numpy as np

    from d3q_core.algo.devices import make_strategy
    from d3q_core.algo.qnet import QNetSpec, init_weights
    from d3q_core.algo.trainer import Trainer
    from d3q_core.config import build_config

    cfg = build_config(None, [f"learner.batch_size={per_replica}", "learner.hidden=32,32",
                              f"learner.grad_clip_norm={clip}", "learner.target_tau=1.0"])
    spec = QNetSpec(4, 2, (32, 32), True)
    strategy, names = make_strategy(devices)
    t = Trainer(spec, cfg.learner, strategy, seed=0)
    w0 = init_weights(spec, np.random.default_rng(7))
    t.set_flat(w0, w0 * 0.5)
    td, loss, q = t.train_step(*batch(t.call_batch))
    return {"devices": names, "replicas": t.replicas, "td": td.tolist(), "loss": loss,
            "mean_q": q, "online": t.get_flat().tolist(), "target": t.get_target_flat().tolist()}


def pairs() -> dict:
    """Each case on 2 logical CPU devices and on one: the MLP step unclipped and clipped
    every step, and the CNN step. One interpreter for all (TensorFlow's start-up is most of
    a worker's time): the 2 devices are made first, and "cpu" then trains on the first."""
    out = {}
    for clip in (100.0, 0.05):
        out[f"step-{clip}"] = {"two": one_step("cpu:2", 32, clip)}
    out["conv"] = {"two": conv_step("cpu:2", 16)}
    for clip in (100.0, 0.05):
        out[f"step-{clip}"]["one"] = one_step("cpu", 64, clip)
    out["conv"]["one"] = conv_step("cpu", 32)
    return out


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "pairs":
        print(json.dumps(pairs()))
    elif mode == "devices":
        from d3q_core.algo.devices import DeviceError, make_strategy

        try:
            make_strategy(sys.argv[2])
            print(json.dumps({"error": None}))
        except DeviceError as exc:
            print(json.dumps({"error": str(exc)}))
