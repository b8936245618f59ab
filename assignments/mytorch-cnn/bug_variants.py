"""Known-bug variants: wrong answers the grader recognises to give a targeted hint.

Each list holds ``Variant`` objects whose ``compute`` takes the same arguments, in the same
order, as the reference for that quantity:

* CONV1D_FORWARD_VARIANTS: compute(x, W, b, stride) -> y (batch, out_channel, out_width)
* CONV1D_DX_VARIANTS: compute(x, W, delta, stride) -> dx (batch, in_channel, in_width)
* CONV1D_DW_VARIANTS: compute(x, W, delta, stride) -> dW (out_channel, in_channel, kernel_size)
* CONV1D_DB_VARIANTS: compute(delta) -> db (out_channel,)
* SIMPLE_SCAN_VARIANTS, DISTRIBUTED_SCAN_VARIANTS: compute(x, w1, w2, w3) -> y (1, 124)
* CNN_DX_VARIANTS: compute(conv_params, strides, linear_params, activations, x, labels) -> dx,
  the argument order of ``models.cnn_input_gradient``.

``Variant`` and ``matching_variant`` (the first variant that reproduces a wrong answer)
are ``reference.matching``'s, re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from reference.matching import Variant, matching_variant
from reference.numpy_layers import (
    FloatArray,
    conv1d_backward,
    conv1d_db,
    conv1d_dx,
    conv1d_forward,
    conv1d_out_width,
)

from .models import (
    DISTRIBUTED_SCAN_LAYOUT,
    SIMPLE_SCAN_LAYOUT,
    ConvParams,
    LinearParams,
    ReferenceCNN,
    scanning_forward,
)

__all__ = [
    "Variant",
    "CONV1D_FORWARD_VARIANTS",
    "CONV1D_DX_VARIANTS",
    "CONV1D_DW_VARIANTS",
    "CONV1D_DB_VARIANTS",
    "SIMPLE_SCAN_VARIANTS",
    "DISTRIBUTED_SCAN_VARIANTS",
    "CNN_DX_VARIANTS",
    "DB_SHAPE_HINT",
    "WIDTH_OFF_BY_ONE_HINT",
    "WIDTH_NO_STRIDE_HINT",
    "conv1d_width_hint",
    "matching_variant",
]


# --------------------------------------------------------------------------- Conv1D forward


def _flipped_kernel(x: FloatArray, W: FloatArray, b: FloatArray, stride: int) -> FloatArray:
    """True convolution (kernel reversed along k): (batch, out_channel, out_width)."""
    return conv1d_forward(x, np.asarray(W)[:, :, ::-1], b, stride)


def _missing_bias(x: FloatArray, W: FloatArray, b: FloatArray, stride: int) -> FloatArray:
    """Cross-correlation without b: (batch, out_channel, out_width)."""
    return conv1d_forward(x, W, np.zeros(np.shape(W)[0]), stride)


CONV1D_FORWARD_VARIANTS: list[Variant] = [
    Variant(
        "flipped_kernel",
        "Your output matches a convolution with the kernel flipped: Conv1D computes a "
        "cross-correlation, y[n, o, t] = sum over c, k of W[o, c, k] * x[n, c, t*stride + k] "
        "+ b[o].",
        _flipped_kernel,
    ),
    Variant(
        "missing_bias",
        "Your output matches the result without the bias: add b[o] to every output position.",
        _missing_bias,
    ),
]


# --------------------------------------------------------------------------- Conv1D dx


def _dx_stride_ignored(x: FloatArray, W: FloatArray, delta: FloatArray, stride: int) -> FloatArray:
    """delta[:, :, t] scattered to input positions t + k: (batch, in_channel, in_width)."""
    return conv1d_dx(delta, W, 1, np.shape(x)[2])


def _dx_kernel_flipped(x: FloatArray, W: FloatArray, delta: FloatArray, stride: int) -> FloatArray:
    """dx computed with W reversed along k: (batch, in_channel, in_width)."""
    return conv1d_dx(delta, np.asarray(W)[:, :, ::-1], stride, np.shape(x)[2])


CONV1D_DX_VARIANTS: list[Variant] = [
    Variant(
        "dx_stride_ignored",
        "dx matches a backward pass that ignores the stride: delta[:, :, t] flows back to "
        "input positions t*stride + k.",
        _dx_stride_ignored,
    ),
    Variant(
        "dx_kernel_flipped",
        "dx matches a backward pass with the kernel flipped.",
        _dx_kernel_flipped,
    ),
]


# --------------------------------------------------------------------------- Conv1D dW / db


def _dw_averaged(x: FloatArray, W: FloatArray, delta: FloatArray, stride: int) -> FloatArray:
    """dW divided by the batch size: (out_channel, in_channel, kernel_size)."""
    dw = conv1d_backward(x, W, delta, stride)[1]
    return np.asarray(dw / np.shape(x)[0], dtype=np.float64)


def _dw_stride_ignored(x: FloatArray, W: FloatArray, delta: FloatArray, stride: int) -> FloatArray:
    """dW[o, c, k] = sum_{n,t} delta[n, o, t] * x[n, c, t + k]: (out, in_channel, kernel)."""
    windows = sliding_window_view(np.asarray(x, dtype=np.float64), np.shape(W)[2], axis=2)
    windows = windows[:, :, : np.shape(delta)[2]]
    return np.asarray(np.einsum("not,nctk->ock", delta, windows), dtype=np.float64)


CONV1D_DW_VARIANTS: list[Variant] = [
    Variant(
        "dw_averaged",
        "dW matches the batch average: this homework wants the sum over the batch "
        "(unaveraged gradients).",
        _dw_averaged,
    ),
    Variant(
        "dw_stride_ignored",
        "dW matches a backward pass that ignores the stride.",
        _dw_stride_ignored,
    ),
]


def _db_averaged(delta: FloatArray) -> FloatArray:
    """db divided by the batch size: (out_channel,)."""
    return np.asarray(conv1d_db(delta) / np.shape(delta)[0], dtype=np.float64)


def _db_first_sample(delta: FloatArray) -> FloatArray:
    """db from the first sample only, delta[0].sum(axis=1): (out_channel,)."""
    return np.asarray(np.asarray(delta, dtype=np.float64)[0].sum(axis=1), dtype=np.float64)


CONV1D_DB_VARIANTS: list[Variant] = [
    Variant(
        "db_averaged",
        "db matches the batch average: sum delta over the batch and width axes without dividing.",
        _db_averaged,
    ),
    Variant(
        "db_first_sample",
        "db uses only the first sample: sum delta over axis 0 (batch) and axis 2 (width).",
        _db_first_sample,
    ),
]

DB_SHAPE_HINT = (
    "db must have shape (out_channel,): sum delta over axis 0 (batch) and axis 2 (width)."
)
WIDTH_OFF_BY_ONE_HINT = (
    "Output width is off by one: out_width = (in_width - kernel_size) // stride + 1."
)
WIDTH_NO_STRIDE_HINT = (
    "Output width ignores the stride: out_width = (in_width - kernel_size) // stride + 1."
)


def conv1d_width_hint(in_width: int, kernel_size: int, stride: int, got_width: int) -> str | None:
    """Hint for a wrong Conv1D output width, or None (also None for the right width)."""
    expected = conv1d_out_width(in_width, kernel_size, stride)
    if got_width == expected:
        return None
    if got_width == in_width - kernel_size + 1:
        return WIDTH_NO_STRIDE_HINT
    if abs(got_width - expected) == 1:
        return WIDTH_OFF_BY_ONE_HINT
    return None


# --------------------------------------------------------------------------- scanning MLPs


def _channel_major(
    weights: Sequence[FloatArray], layout: tuple[tuple[int, int, int, int], ...]
) -> list[FloatArray]:
    """Sliced MLP weights reshaped W.T -> (out, in_channel, kernel) without the transpose."""
    return [
        np.asarray(w, dtype=np.float64)[: k * in_c, :out_c].T.reshape(out_c, in_c, k)
        for w, (out_c, k, in_c, _) in zip(weights, layout, strict=True)
    ]


def _strides(layout: tuple[tuple[int, int, int, int], ...]) -> list[int]:
    """Strides of the three convolutions of ``layout``."""
    return [layer[3] for layer in layout]


def _scan_weight_order(x: FloatArray, w1: FloatArray, w2: FloatArray, w3: FloatArray) -> FloatArray:
    """Simple scan with channel-major weights, e.g. conv1.W = w1.T.reshape(8, 24, 8): (1, 124)."""
    weights = _channel_major((w1, w2, w3), SIMPLE_SCAN_LAYOUT)
    return scanning_forward(x, weights, _strides(SIMPLE_SCAN_LAYOUT))


def _dist_weight_order(x: FloatArray, w1: FloatArray, w2: FloatArray, w3: FloatArray) -> FloatArray:
    """Distributed scan with channel-major weights (all three layers): (1, 124)."""
    weights = _channel_major((w1, w2, w3), DISTRIBUTED_SCAN_LAYOUT)
    return scanning_forward(x, weights, _strides(DISTRIBUTED_SCAN_LAYOUT))


def _dist_wrong_slice(layers: frozenset[int]) -> Callable[..., FloatArray]:
    """Distributed scan whose ``layers`` take the LAST kernel*in rows of their MLP weight.

    Students make this slip in one layer as often as in all three, so each subset is a variant.
    """

    def compute(x: FloatArray, w1: FloatArray, w2: FloatArray, w3: FloatArray) -> FloatArray:
        weights = []
        for index, (w, (out_c, k, in_c, _)) in enumerate(
            zip((w1, w2, w3), DISTRIBUTED_SCAN_LAYOUT, strict=True)
        ):
            full = np.asarray(w, dtype=np.float64)
            rows = full[-k * in_c :] if index in layers else full[: k * in_c]
            weights.append(rows[:, :out_c].T.reshape(out_c, k, in_c).transpose(0, 2, 1))
        return scanning_forward(x, weights, _strides(DISTRIBUTED_SCAN_LAYOUT))

    return compute


# conv3 uses every row of w3 (2 * 8 = 16), so only conv1 and conv2 can take a wrong slice.
_WRONG_SLICE_LAYERS = (frozenset({0, 1, 2}), frozenset({0}), frozenset({1}))


_WEIGHT_ORDER_HINT = (
    "Your output matches the MLP weights reshaped in the wrong order: the MLP input index is "
    "time * in_channels + channel, so reshape W.T to (out, kernel, in_channel) and then "
    "transpose to (out, in_channel, kernel)."
)

SIMPLE_SCAN_VARIANTS: list[Variant] = [
    Variant("scan_weight_order", _WEIGHT_ORDER_HINT, _scan_weight_order),
]

DISTRIBUTED_SCAN_VARIANTS: list[Variant] = [
    Variant(
        "dist_weight_order",
        "Your output matches the sliced MLP weights reshaped in the wrong order: the MLP input "
        "index is time * in_channels + channel, so reshape the slice's transpose to "
        "(out, kernel, in_channel) and then transpose to (out, in_channel, kernel).",
        _dist_weight_order,
    ),
    *(
        Variant(
            "dist_wrong_slice" if layers == _WRONG_SLICE_LAYERS[0] else
            "dist_wrong_slice_conv" + "".join(str(i + 1) for i in sorted(layers)),
            "Your output matches distributed-scanning weights taken from the wrong slice of the "
            "MLP weights: each layer uses only the first kernel_size * in_channel rows and the "
            "first out_channel columns of its MLP weight matrix.",
            _dist_wrong_slice(layers),
        )
        for layers in _WRONG_SLICE_LAYERS
    ),
]


# --------------------------------------------------------------------------- CNN


def _cnn_dx_no_activation_derivative(
    conv_params: Sequence[ConvParams],
    strides: Sequence[int],
    linear_params: LinearParams,
    activations: Sequence[str],
    x: FloatArray,
    labels: FloatArray,
) -> FloatArray:
    """CNN dx (batch, in_channels, input_width) without multiplying by activation derivatives."""
    model = ReferenceCNN(conv_params, strides, linear_params, activations, lr=0.0)
    model.forward(x)
    return model.backward(labels, skip_activation_derivatives=True)


CNN_DX_VARIANTS: list[Variant] = [
    Variant(
        "cnn_dx_no_activation_derivative",
        "Your gradient matches a backward pass that skips the activation derivatives: multiply "
        "the gradient by activations[i].derivative() before each convolution's backward.",
        _cnn_dx_no_activation_derivative,
    ),
]
