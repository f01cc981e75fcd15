"""The Q-network's shape and a NumPy forward pass over its flat weights.

The learner builds its Keras model from the same QNetSpec and publishes its weights flattened
in `QNetSpec.layout()` order, so simulators, the evaluator and the preview act greedily without
importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QNetSpec:
    obs_dim: int
    n_actions: int
    hidden: tuple[int, ...] = (128, 128)
    dueling: bool = True

    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of every weight, in the order they are flattened."""
        shapes: list[tuple[str, tuple[int, ...]]] = []
        width = self.obs_dim
        for i, h in enumerate(self.hidden):
            shapes += [(f"hidden{i}/kernel", (width, h)), (f"hidden{i}/bias", (h,))]
            width = h
        if self.dueling:
            shapes += [("value/kernel", (width, 1)), ("value/bias", (1,))]
            shapes += [("advantage/kernel", (width, self.n_actions))]
            shapes += [("advantage/bias", (self.n_actions,))]
        else:
            shapes += [("q/kernel", (width, self.n_actions)), ("q/bias", (self.n_actions,))]
        return shapes

    @property
    def n_params(self) -> int:
        return sum(int(np.prod(s)) for _, s in self.layout())

    def to_dict(self) -> dict:
        return {
            "obs_dim": self.obs_dim,
            "n_actions": self.n_actions,
            "hidden": list(self.hidden),
            "dueling": self.dueling,
        }

    @classmethod
    def from_dict(cls, d: dict) -> QNetSpec:
        return cls(int(d["obs_dim"]), int(d["n_actions"]), tuple(d["hidden"]), bool(d["dueling"]))


def unflatten(spec: QNetSpec, flat: np.ndarray) -> list[np.ndarray]:
    """Views into `flat`, one per weight, shaped by the spec's layout."""
    if flat.size != spec.n_params:
        raise ValueError(f"expected {spec.n_params} parameters, got {flat.size}")
    out, pos = [], 0
    for _, shape in spec.layout():
        n = int(np.prod(shape))
        out.append(flat[pos : pos + n].reshape(shape))
        pos += n
    return out


def init_weights(spec: QNetSpec, rng: np.random.Generator) -> np.ndarray:
    """Glorot-uniform kernels and zero biases, as Keras initializes Dense layers."""
    parts = []
    for name, shape in spec.layout():
        if name.endswith("kernel"):
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            parts.append(rng.uniform(-limit, limit, size=shape).astype(np.float32).ravel())
        else:
            parts.append(np.zeros(shape, np.float32).ravel())
    return np.concatenate(parts)


class NumpyQNet:
    """Greedy policy and Q-values from flat float32 weights."""

    def __init__(self, spec: QNetSpec, flat: np.ndarray | None = None):
        self.spec = spec
        self.weights: list[np.ndarray] = []
        if flat is not None:
            self.load(flat)

    def load(self, flat: np.ndarray) -> None:
        self.weights = [w.copy() for w in unflatten(self.spec, np.asarray(flat, np.float32))]

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        w = self.weights
        n_hidden = len(self.spec.hidden)
        for i in range(n_hidden):
            x = x @ w[2 * i]
            x += w[2 * i + 1]
            np.maximum(x, 0.0, out=x)
        k = 2 * n_hidden
        if self.spec.dueling:
            value = x @ w[k] + w[k + 1]
            adv = x @ w[k + 2] + w[k + 3]
            return value + adv - adv.mean(axis=1, keepdims=True)
        return x @ w[k] + w[k + 1]

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.argmax(self.q_values(obs), axis=1)
