"""Reference Conv2D of the spring-2021 HW2P1 handout: square kernel, one stride, no padding.

Shapes follow the handout: x (batch, in_channel, width, height), W (out_channel,
in_channel, kernel_size, kernel_size), b (out_channel,). Like Conv1D, the output is a
cross-correlation (no kernel flip) and dW, db are sums over the batch (not averaged).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from reference.matching import Variant
from reference.numpy_layers import FloatArray, conv1d_out_width

__all__ = [
    "conv2d_out_size",
    "conv2d_forward",
    "conv2d_dx",
    "conv2d_dw",
    "conv2d_db",
    "conv2d_backward",
    "CONV2D_FORWARD_VARIANTS",
    "CONV2D_BACKWARD_VARIANTS",
]


def conv2d_out_size(size: tuple[int, int], kernel_size: int, stride: int) -> tuple[int, int]:
    """(out_width, out_height) of a valid 2-D cross-correlation of an input of ``size``."""
    return (conv1d_out_width(size[0], kernel_size, stride),
            conv1d_out_width(size[1], kernel_size, stride))


def _windows(x: FloatArray, kernel_size: int, stride: int) -> FloatArray:
    """x (batch, channel, w, h) -> (batch, channel, out_w, out_h, kernel_size, kernel_size)."""
    conv2d_out_size((x.shape[2], x.shape[3]), kernel_size, stride)  # validates
    windows = sliding_window_view(x, (kernel_size, kernel_size), axis=(2, 3))
    return windows[:, :, ::stride, ::stride]


def _check(x: FloatArray, W: FloatArray) -> None:
    if x.ndim != 4 or W.ndim != 4 or W.shape[2] != W.shape[3]:
        raise ValueError(f"x must be 4-D and W (out, in, k, k), got {x.shape} and {W.shape}")
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but W expects {W.shape[1]}")


def conv2d_forward(x: FloatArray, W: FloatArray, b: FloatArray, stride: int) -> FloatArray:
    """x (batch, in, w, h), W (out, in, k, k), b (out,) -> y (batch, out, out_w, out_h)."""
    x, W, b = (np.asarray(a, dtype=np.float64) for a in (x, W, b))
    _check(x, W)
    win = _windows(x, W.shape[2], stride)
    y = np.einsum("ncijuv,ocuv->noij", win, W, optimize=True) + b.reshape(1, -1, 1, 1)
    return np.asarray(y, dtype=np.float64)


def conv2d_dx(delta: FloatArray, W: FloatArray, stride: int, size: tuple[int, int]
              ) -> FloatArray:
    """delta (batch, out, out_w, out_h), W (out, in, k, k) -> dx (batch, in, *size); the
    positions no window covers get 0."""
    delta, W = np.asarray(delta, dtype=np.float64), np.asarray(W, dtype=np.float64)
    k = W.shape[2]
    dx = np.zeros((delta.shape[0], W.shape[1], *size))
    for i in range(delta.shape[2]):
        for j in range(delta.shape[3]):
            patch = np.einsum("no,ocuv->ncuv", delta[:, :, i, j], W, optimize=True)
            dx[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += patch
    return dx


def conv2d_dw(x: FloatArray, delta: FloatArray, kernel_size: int, stride: int) -> FloatArray:
    """x (batch, in, w, h), delta (batch, out, out_w, out_h) -> dW (out, in, k, k), summed
    over the batch."""
    x, delta = np.asarray(x, dtype=np.float64), np.asarray(delta, dtype=np.float64)
    win = _windows(x, kernel_size, stride)
    if win.shape[2:4] != delta.shape[2:4] or win.shape[0] != delta.shape[0]:
        raise ValueError(f"delta shape {delta.shape} does not match the output of x {x.shape}")
    return np.asarray(np.einsum("noij,ncijuv->ocuv", delta, win, optimize=True),
                      dtype=np.float64)


def conv2d_db(delta: FloatArray) -> FloatArray:
    """delta (batch, out, out_w, out_h) -> db (out,), summed over batch and positions."""
    return np.asarray(np.asarray(delta, dtype=np.float64).sum(axis=(0, 2, 3)), dtype=np.float64)


def conv2d_backward(x: FloatArray, W: FloatArray, delta: FloatArray, stride: int
                    ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(dx, dW, db) for x (batch, in, w, h), W (out, in, k, k), delta (batch, out, ow, oh)."""
    x = np.asarray(x, dtype=np.float64)
    dx = conv2d_dx(delta, W, stride, (x.shape[2], x.shape[3]))
    return dx, conv2d_dw(x, delta, np.shape(W)[2], stride), conv2d_db(delta)


# --------------------------------------------------------------------------- known bugs
# Wrong answers the grader recognises (reference.matching.Variant): forward variants take
# (x, W, b, stride); backward ones (x, W, delta, stride) and return (dx, dW, db).


def _flipped(x: FloatArray, W: FloatArray, b: FloatArray, stride: int) -> FloatArray:
    return conv2d_forward(x, np.asarray(W)[:, :, ::-1, ::-1], b, stride)


def _no_bias(x: FloatArray, W: FloatArray, b: FloatArray, stride: int) -> FloatArray:
    return conv2d_forward(x, W, np.zeros(np.shape(W)[0]), stride)


def _dw_averaged(x: FloatArray, W: FloatArray, delta: FloatArray, stride: int) -> FloatArray:
    return np.asarray(conv2d_dw(x, delta, np.shape(W)[2], stride) / np.shape(x)[0],
                      dtype=np.float64)


def _db_averaged(x: FloatArray, W: FloatArray, delta: FloatArray, stride: int) -> FloatArray:
    return np.asarray(conv2d_db(delta) / np.shape(x)[0], dtype=np.float64)


def _dx_stride_ignored(x: FloatArray, W: FloatArray, delta: FloatArray, stride: int
                       ) -> FloatArray:
    return conv2d_dx(delta, W, 1, (np.shape(x)[2], np.shape(x)[3]))


def _variants() -> tuple[list[Variant], dict[str, list[Variant]]]:
    forward = [
        Variant("conv2d_flipped_kernel", "Your output matches a convolution with the kernel "
                "flipped: Conv2D computes a cross-correlation, y[n, o, i, j] = sum over c, u, v "
                "of W[o, c, u, v] * x[n, c, i*stride + u, j*stride + v] + b[o].", _flipped),
        Variant("conv2d_missing_bias", "Your output matches the result without the bias: add "
                "b[o] at every output position.", _no_bias),
    ]
    averaged = ("matches the batch average: this homework wants sums over the batch "
                "(unaveraged gradients).")
    backward = {
        "dx": [Variant("conv2d_dx_stride_ignored", "dx matches a backward pass that ignores "
                       "the stride: delta[:, :, i, j] flows back to positions i*stride + u, "
                       "j*stride + v.", _dx_stride_ignored)],
        "dW": [Variant("conv2d_dw_averaged", f"dW {averaged}", _dw_averaged)],
        "db": [Variant("conv2d_db_averaged", f"db {averaged}", _db_averaged)],
    }
    return forward, backward


CONV2D_FORWARD_VARIANTS, CONV2D_BACKWARD_VARIANTS = _variants()
