"""The Keras Q-network, built from the same QNetSpec as the NumPy forward pass.

Weights are flattened by layer name in `QNetSpec.layout()` order, never by Keras' own
variable order, so the published vector means the same thing to every reader.
"""

from __future__ import annotations

import keras
import numpy as np

from d3q_core.algo.qnet import QNetSpec


def build_q_model(spec: QNetSpec, name: str = "q", mixed_precision: bool = False) -> keras.Model:
    """The Q-network. A conv spec's input is uint8 (a quarter of float32's traffic to the
    device; cast and scaled inside the compiled step). mixed_precision: bfloat16 compute in
    the trunk and hidden layers (tensor cores), float32 variables and a float32 head, so the
    Q output, the loss and get_flat/set_flat stay float32. bfloat16, not float16: it has
    float32's range, so the train step's gradients need no loss scaling (float16's would
    underflow without a LossScaleOptimizer, which the step's global-norm clipping across
    replicas would have to be taught)."""
    body = "mixed_bfloat16" if mixed_precision else None  # None: the global policy, float32
    head = "float32" if mixed_precision else None
    if spec.conv:
        obs = keras.Input(shape=spec.obs_shape, dtype="uint8", name="obs")
        x = keras.layers.Rescaling(spec.obs_scale, name="scale", dtype=body)(obs)
        if spec.channels_first:  # a stack of frames: the stack axis becomes the channels
            x = keras.layers.Permute((2, 3, 1), name="channels_last", dtype=body)(x)
        for i, (filters, kernel, stride) in enumerate(spec.conv):
            x = keras.layers.Conv2D(filters, kernel, stride, padding="valid", activation="relu",
                                    name=f"conv{i}", dtype=body)(x)
        x = keras.layers.Flatten(name="flatten", dtype=body)(x)
    else:
        obs = keras.Input(shape=spec.obs_shape, name="obs")
        x = obs
        if len(spec.obs_shape) > 1:
            x = keras.layers.Flatten(name="flatten", dtype=body)(x)
        if spec.obs_scale != 1.0:
            x = keras.layers.Rescaling(spec.obs_scale, name="scale", dtype=body)(x)
    for i, width in enumerate(spec.hidden):
        x = keras.layers.Dense(width, activation="relu", name=f"hidden{i}", dtype=body)(x)
    if spec.dueling:
        value = keras.layers.Dense(1, name="value", dtype=head)(x)
        adv = keras.layers.Dense(spec.n_actions, name="advantage", dtype=head)(x)
        q = value + adv - keras.ops.mean(adv, axis=1, keepdims=True)
    else:
        q = keras.layers.Dense(spec.n_actions, name="q", dtype=head)(x)
    return keras.Model(obs, q, name=name)


def ordered_variables(model: keras.Model, spec: QNetSpec) -> list:
    """The model's weight variables (float32, mixed precision or not) in the spec's layout
    order: conv{i}, hidden{i}, then the head."""
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
