"""The Keras Q-network, built from the same QNetSpec as the NumPy forward pass.

Weights are flattened by layer name in `QNetSpec.layout()` order, never by Keras' own
variable order, so the published vector means the same thing to every reader.
"""

from __future__ import annotations

import keras
import numpy as np

from d3q_core.algo.qnet import QNetSpec


def build_q_model(spec: QNetSpec, name: str = "q") -> keras.Model:
    obs = keras.Input(shape=(spec.obs_dim,), name="obs")
    x = obs
    for i, width in enumerate(spec.hidden):
        x = keras.layers.Dense(width, activation="relu", name=f"hidden{i}")(x)
    if spec.dueling:
        value = keras.layers.Dense(1, name="value")(x)
        adv = keras.layers.Dense(spec.n_actions, name="advantage")(x)
        q = value + adv - keras.ops.mean(adv, axis=1, keepdims=True)
    else:
        q = keras.layers.Dense(spec.n_actions, name="q")(x)
    return keras.Model(obs, q, name=name)


def ordered_variables(model: keras.Model, spec: QNetSpec) -> list:
    """The model's weight variables in the spec's layout order."""
    out = []
    for name, _ in spec.layout():
        layer_name, kind = name.split("/")
        layer = model.get_layer(layer_name)
        out.append(layer.kernel if kind == "kernel" else layer.bias)
    return out


def get_flat(model: keras.Model, spec: QNetSpec) -> np.ndarray:
    return np.concatenate(
        [np.asarray(v.numpy(), np.float32).ravel() for v in ordered_variables(model, spec)]
    )


def set_flat(model: keras.Model, spec: QNetSpec, flat: np.ndarray) -> None:
    from d3q_core.algo.qnet import unflatten

    for var, value in zip(ordered_variables(model, spec), unflatten(spec, flat), strict=True):
        var.assign(value)
