"""A simulator's Q-values and epsilon-greedy actions for its K env copies, per vector step.

The hidden x hidden matmuls stay with BLAS (the floor: ~10 us for 32 x 128 x 128 here). numba
takes the two small ends, where NumPy's per-call overhead was most of the cost: the first
layer (a handful of inputs) with its bias and ReLU, and the output layer fused with argmax and
epsilon-greedy. For 32 copies of a 4 -> 128 -> 128 -> 2 net: ~14 us a step, against ~26 us
for NumpyQNet's forward pass (folded weights, preallocated) and NumPy epsilon-greedy.
A conv spec's trunk and dense layers are NumpyQNet's (milliseconds: the ends' savings would not
show); only the fused output layer and epsilon-greedy choice are shared, so the action rule is
the same code for both.
"""

from __future__ import annotations

import numba
import numpy as np

from d3q_core.algo.qnet import NumpyQNet


@numba.njit(cache=True, nogil=True)
def _first_layer(obs: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out[:, :-1] = relu(obs @ w[:-1] + w[-1]). The inner loops run over outputs, so they
    vectorize without reassociating any sum (into a scratch row: ~1.5x faster than in place)."""
    d, width = obs.shape[1], w.shape[1]
    zero = np.float32(0.0)
    acc = np.empty(width, np.float32)
    for e in range(obs.shape[0]):
        for j in range(width):
            acc[j] = w[d, j]
        for i in range(d):
            x = np.float32(obs[e, i])
            for j in range(width):
                acc[j] += x * w[i, j]
        for j in range(width):
            out[e, j] = max(acc[j], zero)


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _output_and_act(x: np.ndarray, relu: bool, w_t: np.ndarray, u: np.ndarray, eps: np.ndarray,
                    q: np.ndarray, actions: np.ndarray) -> None:
    """q = relu?(x) @ w_t.T (x's last column is ones: the bias row), then actions[e] =
    argmax q[e], except where u[e] < eps[e]: floor(u[e] / eps[e] * A) (given u < eps, u / eps
    is uniform on [0, 1): one draw decides both whether a copy explores and where to)."""
    n_actions, width = w_t.shape
    zero = np.float32(0.0)
    for e in range(x.shape[0]):
        best = 0
        for a in range(n_actions):
            s = zero
            for i in range(width):
                s += (max(x[e, i], zero) if relu else x[e, i]) * w_t[a, i]
            q[e, a] = s
            if s > q[e, best]:
                best = a
        if u[e] < eps[e]:
            actions[e] = min(int(u[e] / eps[e] * n_actions), n_actions - 1)
        else:
            actions[e] = best


class Policy:
    """Acts for K copies with a NumpyQNet's folded weights, into preallocated buffers."""

    def __init__(self, qnet: NumpyQNet, k: int):
        spec = qnet.spec
        self.qnet, self.n_actions = qnet, spec.n_actions
        # each layer's input with its ones column (the bias row of the next kernel), and
        # zeros shaped like each hidden one (the ReLU's other operand); a conv trunk's scratch
        self._bufs = qnet.buffers(k)
        self._x, self._zeros, _, _ = self._bufs
        self._conv = bool(spec.conv)
        self.q = np.zeros((k, spec.n_actions), np.float32)
        self.actions = np.zeros(k, np.int64)
        self._out_t = np.zeros((spec.n_actions, self._x[-1].shape[1]), np.float32)
        self._loaded: list[np.ndarray] | None = None

    def act(self, obs: np.ndarray, u: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """Epsilon-greedy actions (int64, a buffer the next call overwrites); `self.q` then
        holds the Q-values of `obs`. `u`: a uniform draw per copy; eps = 1 acts at random."""
        layers = self.qnet.layers
        if layers is not self._loaded:  # new parameters: the output kernel, transposed
            self._out_t[:] = layers[-1].T
            self._loaded = layers
        if self._conv:  # the trunk and hidden layers, ReLU'd
            features = self.qnet.features(obs, self._bufs)
            _output_and_act(features, False, self._out_t, u, eps, self.q, self.actions)
            return self.actions
        if obs.ndim > 2:  # an MLP over image observations
            obs = obs.reshape(obs.shape[0], -1)
        x = self._x
        if len(x) == 1:  # no hidden layer
            x[0][:, :-1] = obs
        else:
            _first_layer(obs, layers[0], x[1])
            for i in range(2, len(x)):
                np.matmul(x[i - 1], layers[i - 1], out=x[i][:, :-1])
                if i < len(x) - 1:  # the output kernel applies the last ReLU itself
                    np.maximum(x[i], self._zeros[i - 1], out=x[i])
        _output_and_act(x[-1], len(x) > 1, self._out_t, u, eps, self.q, self.actions)
        return self.actions

    def act_at_random(self, u: np.ndarray) -> np.ndarray:
        """Uniform actions from the draw `u` alone, for an actor without parameters."""
        self.actions[:] = u * self.n_actions  # float to int truncates: floor, for u >= 0
        return self.actions
