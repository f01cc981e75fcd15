"""A conv trunk's forward pass in NumPy and numba, for simulators without TensorFlow.

Each layer is im2col then one BLAS matmul. The patch rows are a NumPy copy from a sliding
window view, fast where each patch row is made of long contiguous runs (kw * C floats of a
channels-last image). The first layer's input is made so: one compiled pass casts the uint8
or bool observation to float32, moves its channels last and, where the stride divides the
kernel, folds s x s blocks into channels (space to depth), turning Nature's 8x8 stride-4 conv
on 4 frames into a 2x2 stride-1 conv on 64 channels. Its patches (16 x (4, 84, 84)) then took
~0.55 ms here, against ~1.3 ms both for a compiled im2col straight from the frames and for
NumPy's cast, transpose and im2col (single-threaded). obs_scale is folded into the first
kernel at load. Batches run in passes of a few rows: scratch bounded for any batch, and cached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

if TYPE_CHECKING:
    from d3q_core.algo.qnet import QNetSpec

# scratch per pass: Nature's 16 x (4, 84, 84) took ~5.2 ms in passes of 4 rows (3.5 MB), ~5.8
# in one (14 MB), ~6.8 in passes of 1 (L2 1 MB, L3 32 MB here); MinAtar's 32 rows take one
SCRATCH_BYTES = 4 << 20


@numba.njit(cache=True, nogil=True)
def _space_to_depth(x: np.ndarray, s: int, out: np.ndarray) -> None:
    """out[b, Y, X, (c * s + py) * s + px] = float32(x[b, c, Y * s + py, X * s + px]) for x
    (B, C, H, W), any dtype and strides. The loops follow a channels-first source's rows."""
    n, c_in = x.shape[0], x.shape[1]
    hb, wb = out.shape[1], out.shape[2]
    for b in range(n):
        for c in range(c_in):
            for yb in range(hb):
                for py in range(s):
                    row = x[b, c, yb * s + py]
                    j = (c * s + py) * s
                    for xb in range(wb):
                        for px in range(s):
                            out[b, yb, xb, j + px] = np.float32(row[xb * s + px])


@numba.njit(cache=True, nogil=True)
def _bias_relu(y: np.ndarray, bias: np.ndarray, out: np.ndarray) -> None:
    """out[b, p * F + f] = max(y[b, p, f] + bias[f], 0): a conv's output, flattened in Keras'
    (H, W, C) order; out may be y's own memory, or the first dense layer's input."""
    zero = np.float32(0.0)
    for b in range(y.shape[0]):
        for p in range(y.shape[1]):
            for f in range(y.shape[2]):
                out[b, p * y.shape[2] + f] = max(y[b, p, f] + bias[f], zero)


class ConvTrunk:
    """The conv layers of a QNetSpec: a batch of observations to the flattened, ReLU'd output,
    written into the first dense layer's input."""

    def __init__(self, spec: QNetSpec):
        self.spec = spec
        shapes = spec.conv_shapes()
        (_, _, c), (_, k, s), (ho, wo, _) = shapes[0], spec.conv[0], shapes[1]
        b = self.block = s if k % s == 0 else 1  # the first layer's space-to-depth block
        # the rows and columns it reads (a valid conv may leave the last few unread)
        self._crop = reach = ((ho - 1) * s + k, (wo - 1) * s + k)
        # the layers as this pass runs them: (H, W, C) in, kernel, stride, (H, W, C) out
        self.layers = [((reach[0] // b, reach[1] // b, c * b * b), k // b, s // b, shapes[1])]
        for i in range(1, len(spec.conv)):
            self.layers.append((shapes[i], spec.conv[i][1], spec.conv[i][2], shapes[i + 1]))
        self.kernels: list[tuple[np.ndarray, np.ndarray]] = []  # (k*k*cin, cout), bias
        row_bytes = sum(a.nbytes for a in self.scratch(1))
        self.chunk = max(1, SCRATCH_BYTES // row_bytes)  # rows per pass, at most

    def load(self, weights: list[np.ndarray]) -> None:
        """Kernels (kh, kw, cin, cout) and biases, alternating, as the layout lists them."""
        kern = weights[0] * np.float32(self.spec.obs_scale)
        k, c, f, b = kern.shape[0], kern.shape[2], kern.shape[3], self.block
        # rows in the order of the blocked patches: (qy, qx, c, py, px) for dy = qy*b + py
        kern = kern.reshape(k // b, b, k // b, b, c, f).transpose(0, 2, 4, 1, 3, 5)
        weights = [kern, *weights[1:]]
        self.kernels = [(np.ascontiguousarray(kn.reshape(-1, kn.shape[-1]), np.float32),
                         np.ascontiguousarray(bias, np.float32))
                        for kn, bias in zip(weights[::2], weights[1::2], strict=True)]

    def scratch(self, rows: int) -> list[np.ndarray]:
        """The first layer's blocked input, then per layer its patch rows and matmul output."""
        out = [np.empty((rows, *self.layers[0][0]), np.float32)]
        for (_, _, c), k, _, (ho, wo, f) in self.layers:
            out += [np.empty((rows, ho, wo, k, k, c), np.float32),
                    np.empty((rows, ho * wo, f), np.float32)]
        return out

    def forward(self, obs: np.ndarray, dst: np.ndarray,
                scratch: dict[int, list[np.ndarray]]) -> None:
        """dst[:] = the trunk's flattened output for obs (rows, *obs_shape); `scratch` maps a
        chunk's row count to its buffers, filled in as needed."""
        kernels = self.kernels
        if obs.dtype == np.bool_:
            obs = obs.view(np.uint8)
        chw = obs if self.spec.channels_first else obs.transpose(0, 3, 1, 2)
        chw = chw[:, :, : self._crop[0], : self._crop[1]]
        passes = -(-len(obs) // self.chunk)
        rows = -(-len(obs) // max(passes, 1))  # even passes: 16 rows as 4 x 4, not 3 x 5 + 1
        for start in range(0, len(obs), rows):
            part = chw[start : start + rows]
            n = len(part)
            bufs = scratch.get(n)
            if bufs is None:
                bufs = scratch[n] = self.scratch(n)
            if self.block > 1 or self.spec.channels_first:
                _space_to_depth(part, self.block, bufs[0])
            else:  # already channels last: a cast (~5 us for 32 x (10, 10, 4), ~60 compiled)
                np.copyto(bufs[0], part.transpose(0, 2, 3, 1))
            x = bufs[0]
            for i, ((_, k, s, (ho, wo, f)), (kern, bias)) in enumerate(
                    zip(self.layers, kernels, strict=True)):
                col, y = bufs[2 * i + 1], bufs[2 * i + 2]
                windows = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::s, ::s]
                np.copyto(col, windows.transpose(0, 1, 2, 4, 5, 3))  # (kh, kw, C) rows
                np.matmul(col.reshape(n * ho * wo, -1), kern, out=y.reshape(n * ho * wo, f))
                last = i == len(kernels) - 1
                flat = dst[start : start + n] if last else y.reshape(n, -1)
                _bias_relu(y, bias, flat)
                x = y.reshape(n, ho, wo, f)
