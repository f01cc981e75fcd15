"""The Q-network's shape and a NumPy forward pass over its flat weights.

The learner builds its Keras model from the same QNetSpec and publishes its weights flattened
in `QNetSpec.layout()` order, so simulators, the evaluator and the preview act greedily without
importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from d3q_core.algo.convnet import ConvTrunk

NETWORKS: dict[str, tuple[tuple[tuple[int, int, int], ...], tuple[int, ...]]] = {
    # name -> (conv, hidden): the Nature DQN CNN (Mnih et al. 2015) and the MinAtar
    # paper's network (Young & Tian 2019)
    "nature": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), (512,)),
    "minatar": (((16, 3, 1),), (128,)),
}


@dataclass(frozen=True)
class QNetSpec:
    """The network's shape. conv: (filters, kernel, stride) per layer, 'valid' padding and
    ReLU, () for an MLP over the flattened observation. channels_first: the observation is a
    stack of S frames (S, H, W), whose stack axis becomes the channels; else (H, W, C).
    obs_scale multiplies the inputs first (1/255 for uint8 frames)."""

    obs_shape: tuple[int, ...]
    n_actions: int
    hidden: tuple[int, ...] = (128, 128)
    dueling: bool = True
    conv: tuple[tuple[int, int, int], ...] = ()
    channels_first: bool = False
    obs_scale: float = 1.0

    def __post_init__(self) -> None:
        # normalized, so a spec read back from JSON (lists) equals the one written
        shape = (self.obs_shape,) if np.ndim(self.obs_shape) == 0 else self.obs_shape
        fields = {
            "obs_shape": tuple(int(d) for d in shape),
            "n_actions": int(self.n_actions),
            "hidden": tuple(int(h) for h in self.hidden),
            "dueling": bool(self.dueling),
            "conv": tuple(tuple(int(v) for v in layer) for layer in self.conv),
            "channels_first": bool(self.channels_first),
            "obs_scale": float(self.obs_scale),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        if self.conv:
            if len(self.obs_shape) != 3:
                raise ValueError(f"a conv network needs 3-D observations, got {self.obs_shape}")
            if any(len(layer) != 3 for layer in self.conv):
                raise ValueError(f"conv layers are (filters, kernel, stride), got {self.conv}")
            h, w, _ = self.conv_shapes()[-1]
            if h < 1 or w < 1:
                raise ValueError(f"conv layers {self.conv} leave nothing of {self.obs_shape}")

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.obs_shape))

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """(H, W, C) into each conv layer, channels last, and out of the last one."""
        shape = self.obs_shape
        h, w, c = (shape[1], shape[2], shape[0]) if self.channels_first else shape
        shapes = [(h, w, c)]
        for filters, k, s in self.conv:
            h, w, c = (h - k) // s + 1, (w - k) // s + 1, filters
            shapes.append((h, w, c))
        return shapes

    @property
    def feature_dim(self) -> int:
        """Width of the first dense layer's input: the flattened obs or conv output."""
        if not self.conv:
            return self.obs_dim
        h, w, c = self.conv_shapes()[-1]
        return h * w * c

    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        """(name, shape) of every weight, in the order they are flattened."""
        shapes: list[tuple[str, tuple[int, ...]]] = []
        if self.conv:
            for i, ((_, _, cin), (filters, k, _)) in enumerate(
                    zip(self.conv_shapes(), self.conv, strict=False)):
                shapes += [(f"conv{i}/kernel", (k, k, cin, filters)),
                           (f"conv{i}/bias", (filters,))]
        width = self.feature_dim
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
            "obs_shape": list(self.obs_shape),
            "obs_dim": self.obs_dim,  # what readers of the MLP-only format looked for
            "n_actions": self.n_actions,
            "hidden": list(self.hidden),
            "dueling": self.dueling,
            "conv": [list(layer) for layer in self.conv],
            "channels_first": self.channels_first,
            "obs_scale": self.obs_scale,
        }

    @classmethod
    def from_dict(cls, d: dict) -> QNetSpec:
        """Also reads the MLP-only format: "obs_dim" and none of the conv keys."""
        return cls(tuple(d["obs_shape"]) if "obs_shape" in d else int(d["obs_dim"]),
                   int(d["n_actions"]), tuple(d["hidden"]), bool(d["dueling"]),
                   tuple(tuple(layer) for layer in d.get("conv", ())),
                   bool(d.get("channels_first", False)), float(d.get("obs_scale", 1.0)))


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
    """Glorot-uniform kernels and zero biases, as Keras initializes Dense and Conv2D layers
    (a conv kernel's fans count its receptive field: kh * kw * cin and kh * kw * cout)."""
    parts = []
    for name, shape in spec.layout():
        if name.endswith("kernel"):
            field = int(np.prod(shape[:-2]))
            limit = np.sqrt(6.0 / (field * shape[-2] + field * shape[-1]))
            parts.append(rng.uniform(-limit, limit, size=shape).astype(np.float32).ravel())
        else:
            parts.append(np.zeros(shape, np.float32).ravel())
    return np.concatenate(parts)


class NumpyQNet:
    """Greedy policy and Q-values from flat float32 weights.

    At load every bias becomes one more kernel row (the inputs carry a column of ones) and the
    dueling head V + A - mean(A), linear in the last hidden layer, is folded into one output
    layer: a forward pass is one matmul and one ReLU per layer into preallocated buffers (~20 us
    for 32 x 4 -> 128 -> 128 -> 2 here, against ~40 us with separate bias adds and two heads).
    A conv spec's trunk (d3q_core.algo.convnet, numba: imported only for one) fills the first
    dense layer's input; obs_scale is folded into the first kernel. Per forward pass here (2
    cores, AMD EPYC, OpenBLAS with one thread as simulators run it; median of 300 reused-buffer
    calls): ~5.5 ms for 16 x (4, 84, 84) uint8 through the Nature CNN (~3.8 ms of it the conv
    matmuls, ~0.9 ms the 3136 -> 512 layer), ~10.5 ms for 32; ~0.28 ms for 32 x (10, 10, 4)
    bool through MinAtar's."""

    def __init__(self, spec: QNetSpec, flat: np.ndarray | None = None):
        self.spec = spec
        self.layers: list[np.ndarray] = []  # (inputs + 1, outputs): kernel over bias
        self.trunk: ConvTrunk | None = None
        if spec.conv:
            from d3q_core.algo.convnet import ConvTrunk

            self.trunk = ConvTrunk(spec)
        self._buffers: dict[int, tuple] = {}
        if flat is not None:
            self.load(flat)

    def load(self, flat: np.ndarray) -> None:
        w = unflatten(self.spec, np.asarray(flat, np.float32))
        if self.trunk is not None:
            n_conv = 2 * len(self.spec.conv)
            self.trunk.load(w[:n_conv])
            w = w[n_conv:]
        w = [x.astype(np.float64) for x in w]
        k = 2 * len(self.spec.hidden)
        layers = [(w[i], w[i + 1]) for i in range(0, k, 2)]
        if self.spec.dueling:
            wv, bv, wa, ba = w[k : k + 4]
            layers.append((wv + wa - wa.mean(axis=1, keepdims=True), bv + ba - ba.mean()))
        else:
            layers.append((w[k], w[k + 1]))
        if self.trunk is None and self.spec.obs_scale != 1.0:
            layers[0] = (layers[0][0] * self.spec.obs_scale, layers[0][1])
        self.layers = [np.vstack([kern, bias[None, :]]).astype(np.float32)
                       for kern, bias in layers]

    def layer_buffers(self, rows: int) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Each layer's input with its ones column, zeros shaped like each hidden one (NumPy's
        maximum against a zeros array is vectorized, against a scalar ~3x slower here), and
        the output."""
        inputs = [np.ones((rows, w + 1), np.float32)
                  for w in (self.spec.feature_dim, *self.spec.hidden)]
        zeros = [np.zeros_like(h) for h in inputs[1:]]
        return inputs, zeros, np.empty((rows, self.spec.n_actions), np.float32)

    def buffers(self, rows: int) -> tuple:
        """layer_buffers and the conv trunk's scratch, for `features` and `q_values`."""
        return (*self.layer_buffers(rows), {})

    def features(self, obs: np.ndarray, bufs: tuple) -> np.ndarray:
        """The output layer's input (ReLU'd, ones column last) for a batch, in `bufs`."""
        inputs, zeros, _, scratch = bufs
        if self.trunk is not None:
            self.trunk.forward(obs, inputs[0][:, :-1], scratch)
        else:
            inputs[0][:, :-1] = obs if obs.ndim == 2 else obs.reshape(len(obs), -1)
        for x, layer, h, z in zip(inputs, self.layers, inputs[1:], zeros, strict=False):
            np.matmul(x, layer, out=h[:, :-1])
            np.maximum(h, z, out=h)  # the ones column stays 1
        return inputs[-1]

    def q_values(self, obs: np.ndarray, reuse: bool = False) -> np.ndarray:
        """Q-values of a batch of observations. With reuse=True the result is a buffer that the
        next such call with as many rows overwrites (the simulator's step: no allocation)."""
        obs = np.asarray(obs)
        rows = obs.shape[0]
        bufs = self._buffers.get(rows) if reuse else None
        if bufs is None:
            bufs = self.buffers(rows)
            if reuse:
                if len(self._buffers) >= 4:
                    self._buffers.clear()
                self._buffers[rows] = bufs
        return np.matmul(self.features(obs, bufs), self.layers[-1], out=bufs[2])

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.argmax(self.q_values(obs, reuse=True), axis=1)
