"""Trusted NumPy (float64) reference layers for the mytorch CNN homework (11-785 HW2P1, S20).

Conventions (see docs/mytorch-cnn-conventions.md):

* Conv1D is a cross-correlation,
  ``y[n, o, t] = sum_{c,k} W[o, c, k] * x[n, c, t*stride + k] + b[o]``,
  with x (batch, in_channel, in_width), W (out_channel, in_channel, kernel_size), b (out_channel,)
  and y (batch, out_channel, out_width), ``out_width = (in_width - kernel_size) // stride + 1``.
  Its gradients dW and db are SUMS over the batch (unaveraged).
* Linear uses W (in_feature, out_feature), b (1, out_feature) and AVERAGED dW / db (HW1P1).
* Activations store their output in ``state``; ``derivative()`` takes no argument.
* SoftmaxCrossEntropy returns the per-sample loss (batch,); ``derivative()`` = softmax - y.

The functional core (``conv1d_*``) is fully vectorised: no Python loop over batch or width.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "FloatArray",
    "conv1d_out_width",
    "conv1d_forward",
    "conv1d_backward",
    "conv1d_dx",
    "conv1d_dw",
    "conv1d_db",
    "Conv1D",
    "Flatten",
    "Activation",
    "Identity",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "Linear",
    "SoftmaxCrossEntropy",
]


def _f64(a: npt.ArrayLike) -> FloatArray:
    """Return ``a`` as a float64 array (no copy when it already is one)."""
    return np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------------------- functional core


def conv1d_out_width(in_width: int, kernel_size: int, stride: int) -> int:
    """Output width of a valid 1-D cross-correlation: ``(in_width - kernel_size) // stride + 1``.

    Raises ValueError when the kernel does not fit or the stride is not positive.
    """
    if stride < 1 or kernel_size < 1:
        raise ValueError(f"kernel_size and stride must be >= 1, got {kernel_size}, {stride}")
    if kernel_size > in_width:
        raise ValueError(f"kernel_size {kernel_size} larger than in_width {in_width}")
    return (in_width - kernel_size) // stride + 1


def _windows(x: FloatArray, kernel_size: int, stride: int) -> FloatArray:
    """Strided windows of x (batch, channel, width) -> (batch, channel, out_width, kernel_size)."""
    conv1d_out_width(x.shape[2], kernel_size, stride)  # validates the sizes
    return sliding_window_view(x, kernel_size, axis=2)[:, :, ::stride]


def _check_conv_shapes(x: FloatArray, W: FloatArray) -> None:
    """Raise ValueError unless x is (batch, in_channel, width) and W is (out, in_channel, k)."""
    if x.ndim != 3 or W.ndim != 3:
        raise ValueError(f"x and W must be 3-D, got shapes {x.shape} and {W.shape}")
    if x.shape[1] != W.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but W expects {W.shape[1]}")


def conv1d_forward(x: FloatArray, W: FloatArray, b: FloatArray, stride: int) -> FloatArray:
    """Conv1D forward pass (cross-correlation).

    x (batch, in_channel, in_width), W (out_channel, in_channel, kernel_size), b (out_channel,)
    -> y (batch, out_channel, out_width) with out_width = conv1d_out_width(in_width, k, stride).
    """
    x, W, b = _f64(x), _f64(W), _f64(b).reshape(-1)
    _check_conv_shapes(x, W)
    win = _windows(x, W.shape[2], stride)
    return _f64(np.einsum("nctk,ock->not", win, W, optimize=True) + b[None, :, None])


def conv1d_dx(delta: FloatArray, W: FloatArray, stride: int, in_width: int) -> FloatArray:
    """Gradient w.r.t. the input: delta[:, o, t] flows back to positions ``t*stride + k``.

    delta (batch, out_channel, out_width), W (out_channel, in_channel, kernel_size)
    -> dx (batch, in_channel, in_width). Positions no window reaches get 0.
    Requires ``(out_width - 1) * stride + kernel_size <= in_width``.
    """
    delta, W = _f64(delta), _f64(W)
    batch, out_channel, out_width = delta.shape
    kernel_size = W.shape[2]
    span = (out_width - 1) * stride + 1
    if span + kernel_size - 1 > in_width:
        raise ValueError("delta is too wide for in_width, kernel_size and stride")
    padded = np.zeros((batch, out_channel, in_width + kernel_size - 1))
    padded[:, :, kernel_size - 1 : kernel_size - 1 + span : stride] = delta
    win = sliding_window_view(padded, kernel_size, axis=2)[:, :, :in_width]
    return _f64(np.einsum("nojk,ock->ncj", win, W[:, :, ::-1], optimize=True))


def conv1d_dw(x: FloatArray, delta: FloatArray, kernel_size: int, stride: int) -> FloatArray:
    """Gradient w.r.t. W, summed over the batch.

    x (batch, in_channel, in_width), delta (batch, out_channel, out_width)
    -> dW (out_channel, in_channel, kernel_size).
    """
    x, delta = _f64(x), _f64(delta)
    win = _windows(x, kernel_size, stride)
    if win.shape[2] != delta.shape[2] or win.shape[0] != delta.shape[0]:
        raise ValueError(f"delta shape {delta.shape} does not match the output of x {x.shape}")
    return _f64(np.einsum("not,nctk->ock", delta, win, optimize=True))


def conv1d_db(delta: FloatArray) -> FloatArray:
    """Gradient w.r.t. b, summed over batch and width: delta (batch, out, width) -> (out,)."""
    return _f64(_f64(delta).sum(axis=(0, 2)))


def conv1d_backward(
    x: FloatArray, W: FloatArray, delta: FloatArray, stride: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Conv1D backward pass.

    x (batch, in_channel, in_width), W (out_channel, in_channel, kernel_size),
    delta (batch, out_channel, out_width) -> (dx like x, dW like W, db (out_channel,)),
    with dW and db summed over the batch (unaveraged).
    """
    x, W, delta = _f64(x), _f64(W), _f64(delta)
    _check_conv_shapes(x, W)
    expected = (x.shape[0], W.shape[0], conv1d_out_width(x.shape[2], W.shape[2], stride))
    if delta.shape != expected:
        raise ValueError(f"delta has shape {delta.shape}, expected {expected}")
    dx = conv1d_dx(delta, W, stride, x.shape[2])
    return dx, conv1d_dw(x, delta, W.shape[2], stride), conv1d_db(delta)


# --------------------------------------------------------------------------- layer classes


class Conv1D:
    """Student-facing Conv1D.

    W (out_channel, in_channel, kernel_size) is drawn from N(0, 1) with ``rng`` when given,
    otherwise zeros; b (out_channel,) always starts at zeros (the homework's default).
    dW, db have the shapes of W, b and are sums over the batch after ``backward``.
    """

    def __init__(
        self,
        in_channel: int,
        out_channel: int,
        kernel_size: int,
        stride: int,
        rng: np.random.Generator | None = None,
    ) -> None:
        shape = (out_channel, in_channel, kernel_size)
        self.in_channel, self.out_channel = in_channel, out_channel
        self.kernel_size, self.stride = kernel_size, stride
        self.W: FloatArray = rng.normal(0.0, 1.0, shape) if rng is not None else np.zeros(shape)
        self.b: FloatArray = np.zeros(out_channel)
        self.dW: FloatArray = np.zeros(shape)
        self.db: FloatArray = np.zeros(out_channel)
        self.x: FloatArray | None = None

    def __call__(self, x: FloatArray) -> FloatArray:
        """Same as ``forward``."""
        return self.forward(x)

    def forward(self, x: FloatArray) -> FloatArray:
        """x (batch, in_channel, in_width) -> (batch, out_channel, out_width); stores x."""
        self.x = _f64(x)
        return conv1d_forward(self.x, self.W, self.b, self.stride)

    def backward(self, delta: FloatArray) -> FloatArray:
        """delta (batch, out, out_width) -> dx (batch, in_channel, in_width); sets dW, db."""
        if self.x is None:
            raise RuntimeError("backward called before forward")
        dx, self.dW, self.db = conv1d_backward(self.x, self.W, delta, self.stride)
        return dx


class Flatten:
    """(batch, channel, width) -> (batch, channel * width) in C order; backward reshapes back."""

    def __init__(self) -> None:
        self.in_shape: tuple[int, ...] | None = None

    def __call__(self, x: FloatArray) -> FloatArray:
        """Same as ``forward``."""
        return self.forward(x)

    def forward(self, x: FloatArray) -> FloatArray:
        """x (batch, c, w) -> (batch, c * w); stores the input shape."""
        x = _f64(x)
        self.in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, delta: FloatArray) -> FloatArray:
        """delta (batch, c * w) -> (batch, c, w)."""
        if self.in_shape is None:
            raise RuntimeError("backward called before forward")
        return _f64(delta).reshape(self.in_shape)


class Activation:
    """Elementwise activation: ``forward`` stores its output in ``state`` (any shape)."""

    def __init__(self) -> None:
        self.state: FloatArray = np.zeros(0)

    def __call__(self, x: FloatArray) -> FloatArray:
        """Same as ``forward``."""
        return self.forward(x)

    def forward(self, x: FloatArray) -> FloatArray:
        """x (any shape) -> activation(x) (same shape), also stored in ``state``."""
        self.state = self._apply(_f64(x))
        return self.state

    def _apply(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError

    def derivative(self) -> FloatArray:
        """Elementwise derivative at the stored state (same shape as ``state``)."""
        raise NotImplementedError


class Identity(Activation):
    """f(x) = x."""

    def _apply(self, x: FloatArray) -> FloatArray:
        return x.copy()

    def derivative(self) -> FloatArray:
        """Ones like ``state``."""
        return np.ones_like(self.state)


class Sigmoid(Activation):
    """f(x) = 1 / (1 + exp(-x)), computed without overflow."""

    def _apply(self, x: FloatArray) -> FloatArray:
        e = np.exp(-np.abs(x))
        return _f64(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))

    def derivative(self) -> FloatArray:
        """state * (1 - state)."""
        return self.state * (1.0 - self.state)


class Tanh(Activation):
    """f(x) = tanh(x)."""

    def _apply(self, x: FloatArray) -> FloatArray:
        return np.tanh(x)

    def derivative(self) -> FloatArray:
        """1 - state ** 2."""
        return 1.0 - self.state**2


class ReLU(Activation):
    """f(x) = max(x, 0); derivative 1 where state > 0, else 0 (0 at x == 0)."""

    def _apply(self, x: FloatArray) -> FloatArray:
        return np.maximum(x, 0.0)

    def derivative(self) -> FloatArray:
        """(state > 0) as float64."""
        return (self.state > 0).astype(np.float64)


class Linear:
    """HW1P1 Linear: W (in_feature, out_feature), b (1, out_feature), AVERAGED dW / db.

    W is drawn from N(0, 1) with ``rng`` when given, otherwise zeros; b starts at zeros.
    b may be replaced by an array of shape (out_feature,); db then keeps b's shape.
    """

    def __init__(
        self, in_feature: int, out_feature: int, rng: np.random.Generator | None = None
    ) -> None:
        shape = (in_feature, out_feature)
        self.W: FloatArray = rng.normal(0.0, 1.0, shape) if rng is not None else np.zeros(shape)
        self.b: FloatArray = np.zeros((1, out_feature))
        self.dW: FloatArray = np.zeros(shape)
        self.db: FloatArray = np.zeros((1, out_feature))
        self.x: FloatArray | None = None

    def __call__(self, x: FloatArray) -> FloatArray:
        """Same as ``forward``."""
        return self.forward(x)

    def forward(self, x: FloatArray) -> FloatArray:
        """x (batch, in_feature) -> x @ W + b (batch, out_feature); stores x."""
        self.x = _f64(x)
        return _f64(self.x @ self.W + self.b)

    def backward(self, delta: FloatArray) -> FloatArray:
        """delta (batch, out_feature) -> dx = delta @ W.T (batch, in_feature).

        Sets dW = x.T @ delta / batch (in, out) and db = mean of delta over the batch (b's shape).
        """
        if self.x is None:
            raise RuntimeError("backward called before forward")
        delta = _f64(delta)
        self.dW = self.x.T @ delta / delta.shape[0]
        self.db = delta.mean(axis=0).reshape(self.b.shape)
        return _f64(delta @ self.W.T)


class SoftmaxCrossEntropy:
    """Softmax + cross-entropy on logits x (batch, classes) and targets y (batch, classes)."""

    def __init__(self) -> None:
        self.softmax: FloatArray = np.zeros(0)
        self.labels: FloatArray = np.zeros(0)

    def __call__(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Same as ``forward``."""
        return self.forward(x, y)

    def forward(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """x, y (batch, classes) -> per-sample loss -sum_j y[n, j] log softmax(x)[n, j] (batch,).

        Uses the max-shift / log-sum-exp form, so large logits do not overflow.
        """
        x, y = _f64(x), _f64(y)
        shifted = x - x.max(axis=1, keepdims=True)
        log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.softmax, self.labels = np.exp(log_softmax), y
        return _f64(-(y * log_softmax).sum(axis=1))

    def derivative(self) -> FloatArray:
        """softmax(x) - y (batch, classes), not averaged over the batch."""
        return self.softmax - self.labels
