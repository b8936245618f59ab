"""Trusted references for the composite parts of HW2P1: scanning MLPs and the CNN model.

The scanned MLP has 8 time steps x 24 channels as input (input index = t * 24 + c) and
layers 192 -> 8 -> 16 -> 4 with ReLU between them and no biases; its weights are
w1 (192, 8), w2 (8, 16), w3 (16, 4) (see docs/mytorch-cnn-conventions.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reference.numpy_layers import (
    Activation,
    Conv1D,
    Flatten,
    FloatArray,
    Identity,
    Linear,
    ReLU,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    conv1d_forward,
    conv1d_out_width,
)

__all__ = [
    "MLP_WEIGHT_SHAPES",
    "SIMPLE_SCAN_LAYOUT",
    "DISTRIBUTED_SCAN_LAYOUT",
    "mlp_to_conv_weight",
    "simple_scanning_weights",
    "distributed_scanning_weights",
    "distributed_mlp_weights",
    "mlp_scan",
    "scanning_forward",
    "simple_scanning_forward",
    "distributed_scanning_forward",
    "ACTIVATIONS",
    "make_activation",
    "CNNConfig",
    "GRADED_CNN_CONFIG",
    "ConvParams",
    "LinearParams",
    "random_cnn_params",
    "ReferenceCNN",
    "cnn_input_gradient",
]

MLP_WEIGHT_SHAPES: tuple[tuple[int, int], ...] = ((192, 8), (8, 16), (16, 4))
"""Shapes of the scanned MLP's weights w1, w2, w3."""

# (out_channel, kernel_size, in_channel, stride) of conv1, conv2, conv3.
SIMPLE_SCAN_LAYOUT: tuple[tuple[int, int, int, int], ...] = (
    (8, 8, 24, 4),
    (16, 1, 8, 1),
    (4, 1, 16, 1),
)
DISTRIBUTED_SCAN_LAYOUT: tuple[tuple[int, int, int, int], ...] = (
    (2, 2, 24, 2),
    (8, 2, 2, 2),
    (4, 2, 8, 1),
)


# --------------------------------------------------------------------------- scanning MLPs


def mlp_to_conv_weight(
    w: FloatArray, out_channel: int, kernel_size: int, in_channel: int
) -> FloatArray:
    """Turn MLP weights w (>= kernel_size*in_channel, >= out_channel) into a Conv1D W.

    Uses the block w[:kernel_size * in_channel, :out_channel] whose row index is
    k * in_channel + c; returns W (out_channel, in_channel, kernel_size) =
    block.T.reshape(out_channel, kernel_size, in_channel).transpose(0, 2, 1).
    """
    block = np.asarray(w, dtype=np.float64)[: kernel_size * in_channel, :out_channel]
    if block.shape != (kernel_size * in_channel, out_channel):
        raise ValueError(f"MLP weight of shape {np.shape(w)} is too small for this layer")
    conv_w = block.T.reshape(out_channel, kernel_size, in_channel).transpose(0, 2, 1)
    return np.ascontiguousarray(conv_w)


def _check_mlp_weights(w1: FloatArray, w2: FloatArray, w3: FloatArray) -> None:
    """Raise ValueError unless w1, w2, w3 have the shapes (192, 8), (8, 16), (16, 4)."""
    shapes = tuple(np.shape(w) for w in (w1, w2, w3))
    if shapes != MLP_WEIGHT_SHAPES:
        raise ValueError(f"MLP weights have shapes {shapes}, expected {MLP_WEIGHT_SHAPES}")


def _layout_weights(
    w1: FloatArray,
    w2: FloatArray,
    w3: FloatArray,
    layout: tuple[tuple[int, int, int, int], ...],
) -> list[FloatArray]:
    """Conv weights for the three layers of ``layout`` from the MLP weights w1, w2, w3."""
    _check_mlp_weights(w1, w2, w3)
    return [
        mlp_to_conv_weight(w, out_c, k, in_c)
        for w, (out_c, k, in_c, _) in zip((w1, w2, w3), layout, strict=True)
    ]


def simple_scanning_weights(w1: FloatArray, w2: FloatArray, w3: FloatArray) -> list[FloatArray]:
    """Conv1D weights of the simple scanning MLP: shapes (8, 24, 8), (16, 8, 1), (4, 16, 1).

    w1 (192, 8), w2 (8, 16), w3 (16, 4); e.g. conv1.W = w1.T.reshape(8, 8, 24).transpose(0, 2, 1).
    """
    return _layout_weights(w1, w2, w3, SIMPLE_SCAN_LAYOUT)


def distributed_scanning_weights(
    w1: FloatArray, w2: FloatArray, w3: FloatArray
) -> list[FloatArray]:
    """Conv1D weights of the distributed scanning MLP: shapes (2, 24, 2), (8, 2, 2), (4, 8, 2).

    Only the shared blocks w1[:48, :2], w2[:4, :8], w3[:16, :4] are used, each reshaped as
    block.T.reshape(out, kernel, in).transpose(0, 2, 1).
    """
    return _layout_weights(w1, w2, w3, DISTRIBUTED_SCAN_LAYOUT)


def distributed_mlp_weights(rng: np.random.Generator) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Random weights of the distributed MLP with its parameter sharing (handout 3.4).

    Layer 1 has four groups of 2 neurons, group g seeing time steps 2g, 2g+1 (rows
    48g..48g+47, columns 2g, 2g+1 of w1, the same block for every group); layer 2 two
    groups of 8 neurons, group h seeing layer-1 groups 2h, 2h+1 (rows 4h..4h+3, columns
    8h..8h+7 of w2, one shared block); layer 3 sees both layer-2 groups (all of w3). Every
    other weight is 0, so any copy of a shared block gives the same CNN, as with the
    course's own weights. Returns w1 (192, 8), w2 (8, 16), w3 (16, 4).
    """
    block1, block2 = rng.standard_normal((48, 2)), rng.standard_normal((4, 8))
    w1, w2 = np.zeros((192, 8)), np.zeros((8, 16))
    for g in range(4):
        w1[48 * g:48 * (g + 1), 2 * g:2 * (g + 1)] = block1
    for h in range(2):
        w2[4 * h:4 * (h + 1), 8 * h:8 * (h + 1)] = block2
    return w1, w2, rng.standard_normal((16, 4))


def mlp_scan(x: FloatArray, w1: FloatArray, w2: FloatArray, w3: FloatArray) -> FloatArray:
    """Scan the MLP itself over x (batch, 24, width): windows of 8 steps every 4 steps,
    flattened time-major (t * 24 + c) -> (batch, 4 * n_windows) in the CNN's Flatten order
    (output channel major). The oracle the scanning CNNs must equal."""
    x = np.asarray(x, dtype=np.float64)
    outputs = []
    for start in range(0, x.shape[2] - 8 + 1, 4):
        window = x[:, :, start:start + 8].transpose(0, 2, 1).reshape(x.shape[0], -1)
        outputs.append(np.maximum(np.maximum(window @ w1, 0) @ w2, 0) @ w3)
    return np.stack(outputs, axis=2).reshape(x.shape[0], -1)


def scanning_forward(
    x: FloatArray, weights: Sequence[FloatArray], strides: Sequence[int]
) -> FloatArray:
    """conv -> ReLU -> ... -> conv -> Flatten with zero biases.

    x (batch, in_channel, width), weights[i] (out_i, in_i, k_i) -> (batch, out_last * width_last).
    """
    h = np.asarray(x, dtype=np.float64)
    for i, (w, stride) in enumerate(zip(weights, strides, strict=True)):
        h = conv1d_forward(h, w, np.zeros(w.shape[0]), stride)
        if i < len(weights) - 1:
            h = np.maximum(h, 0.0)
    return h.reshape(h.shape[0], -1)


def simple_scanning_forward(x: FloatArray, weights: Sequence[FloatArray]) -> FloatArray:
    """Simple scanning MLP: x (1, 24, 128) -> (1, 124); weights from simple_scanning_weights."""
    return scanning_forward(x, weights, [layer[3] for layer in SIMPLE_SCAN_LAYOUT])


def distributed_scanning_forward(x: FloatArray, weights: Sequence[FloatArray]) -> FloatArray:
    """Distributed scanning MLP: x (1, 24, 128) -> (1, 124); weights from the distributed ones."""
    return scanning_forward(x, weights, [layer[3] for layer in DISTRIBUTED_SCAN_LAYOUT])


# --------------------------------------------------------------------------- CNN model

ACTIVATIONS: dict[str, type[Activation]] = {
    "identity": Identity,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
}

ConvParams = tuple[FloatArray, FloatArray]
"""(W (out_channel, in_channel, kernel_size), b (out_channel,)) of one Conv1D."""
LinearParams = tuple[FloatArray, FloatArray]
"""(W (in_feature, out_feature), b (out_feature,) or (1, out_feature)) of the Linear layer."""


def make_activation(name: str) -> Activation:
    """A fresh activation from its case-insensitive name: identity, sigmoid, tanh or relu."""
    try:
        return ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None


@dataclass(frozen=True)
class CNNConfig:
    """Constructor arguments of hw2.py's CNN; the defaults are the graded configuration."""

    input_width: int = 128
    num_input_channels: int = 24
    num_channels: tuple[int, ...] = (56, 28, 14)
    kernel_sizes: tuple[int, ...] = (5, 6, 2)
    strides: tuple[int, ...] = (1, 2, 2)
    num_linear_neurons: int = 10
    activations: tuple[str, ...] = ("tanh", "relu", "sigmoid")
    lr: float = 1e-3

    def conv_output_widths(self) -> list[int]:
        """Width after each convolution (graded: [124, 60, 30])."""
        widths, width = [], self.input_width
        for kernel_size, stride in zip(self.kernel_sizes, self.strides, strict=True):
            width = conv1d_out_width(width, kernel_size, stride)
            widths.append(width)
        return widths

    def conv_weight_shapes(self) -> list[tuple[int, int, int]]:
        """(out_channel, in_channel, kernel_size) of each convolution."""
        ins = (self.num_input_channels, *self.num_channels[:-1])
        return list(zip(self.num_channels, ins, self.kernel_sizes, strict=True))

    def linear_weight_shape(self) -> tuple[int, int]:
        """(num_channels[-1] * final_width, num_linear_neurons) (graded: (420, 10))."""
        flat = self.num_channels[-1] * self.conv_output_widths()[-1]
        return flat, self.num_linear_neurons


GRADED_CNN_CONFIG = CNNConfig()


def random_cnn_params(
    config: CNNConfig, rng: np.random.Generator
) -> tuple[list[ConvParams], LinearParams]:
    """Random parameters for ``config``: W ~ N(0, 1 / fan_in), b ~ N(0, 0.1**2).

    Returns ([(W_i (out, in, k), b_i (out,)) per conv], (W (in, out), b (out,))).
    """
    conv_params: list[ConvParams] = []
    for out_c, in_c, k in config.conv_weight_shapes():
        w = rng.normal(0.0, 1.0 / np.sqrt(in_c * k), (out_c, in_c, k))
        conv_params.append((w, rng.normal(0.0, 0.1, out_c)))
    in_f, out_f = config.linear_weight_shape()
    linear = (rng.normal(0.0, 1.0 / np.sqrt(in_f), (in_f, out_f)), rng.normal(0.0, 0.1, out_f))
    return conv_params, linear


def _make_conv(params: ConvParams, stride: int) -> Conv1D:
    """A Conv1D holding copies of W (out, in, k) and b (out,)."""
    w = np.array(params[0], dtype=np.float64)
    if w.ndim != 3:
        raise ValueError(f"conv W must be (out, in, kernel), got shape {w.shape}")
    conv = Conv1D(w.shape[1], w.shape[0], w.shape[2], stride)
    conv.W, conv.b = w, np.array(params[1], dtype=np.float64).reshape(w.shape[0])
    return conv


def _make_linear(params: LinearParams) -> Linear:
    """A Linear holding copies of W (in, out) and b ((out,) or (1, out), shape kept)."""
    w = np.array(params[0], dtype=np.float64)
    linear = Linear(w.shape[0], w.shape[1])
    linear.W, linear.b = w, np.array(params[1], dtype=np.float64)
    if linear.b.size != w.shape[1]:
        raise ValueError(f"linear b has shape {linear.b.shape}, expected ({w.shape[1]},)")
    return linear


class ReferenceCNN:
    """hw2.py's CNN built from explicit arrays (copied, so ``step`` never touches the inputs).

    conv_params[i] = (W (out_i, in_i, k_i), b (out_i,)), strides[i], activations[i] (a name),
    linear_params = (W (num_channels[-1] * final_width, neurons), b). Forward:
    conv_i -> activation_i for each i, Flatten, Linear. Loss: SoftmaxCrossEntropy, summed.
    """

    def __init__(
        self,
        conv_params: Sequence[ConvParams],
        strides: Sequence[int],
        linear_params: LinearParams,
        activations: Sequence[str],
        lr: float,
    ) -> None:
        if not len(conv_params) == len(strides) == len(activations):
            raise ValueError("conv_params, strides and activations must have the same length")
        self.convolutional_layers = [
            _make_conv(p, s) for p, s in zip(conv_params, strides, strict=True)
        ]
        self.activations = [make_activation(name) for name in activations]
        self.flatten = Flatten()
        self.linear_layer = _make_linear(linear_params)
        self.criterion = SoftmaxCrossEntropy()
        self.lr = lr
        self.output: FloatArray | None = None
        self.loss: float | None = None

    @classmethod
    def from_config(
        cls,
        config: CNNConfig,
        conv_params: Sequence[ConvParams],
        linear_params: LinearParams,
    ) -> ReferenceCNN:
        """Build the CNN of ``config`` after checking every parameter shape against it."""
        got = [np.shape(w) for w, _ in conv_params]
        if got != config.conv_weight_shapes():
            raise ValueError(f"conv W shapes {got} != {config.conv_weight_shapes()}")
        if np.shape(linear_params[0]) != config.linear_weight_shape():
            raise ValueError(f"linear W shape {np.shape(linear_params[0])} is wrong")
        return cls(conv_params, config.strides, linear_params, config.activations, config.lr)

    def __call__(self, x: FloatArray) -> FloatArray:
        """Same as ``forward``."""
        return self.forward(x)

    def forward(self, x: FloatArray) -> FloatArray:
        """x (batch, in_channels, input_width) -> logits (batch, neurons), stored in ``output``."""
        h = np.asarray(x, dtype=np.float64)
        for conv, activation in zip(self.convolutional_layers, self.activations, strict=True):
            h = activation(conv(h))
        self.output = self.linear_layer(self.flatten(h))
        return self.output

    def backward(
        self, labels: FloatArray, *, skip_activation_derivatives: bool = False
    ) -> FloatArray:
        """One-hot labels (batch, neurons) -> dx (batch, in_channels, input_width).

        Sets every layer's dW/db (conv: sums over the batch; linear: averages) and ``loss``
        (sum of the per-sample losses). ``skip_activation_derivatives`` reproduces the known
        bug of not multiplying by activations[i].derivative(); it exists for bug_variants only.
        """
        if self.output is None:
            raise RuntimeError("backward called before forward")
        self.loss = float(self.criterion(self.output, labels).sum())
        grad = self.flatten.backward(self.linear_layer.backward(self.criterion.derivative()))
        layers = list(zip(self.convolutional_layers, self.activations, strict=True))
        for conv, activation in reversed(layers):
            if not skip_activation_derivatives:
                grad = grad * activation.derivative()
            grad = conv.backward(grad)
        return grad

    def _parametrised_layers(self) -> list[Conv1D | Linear]:
        """Every conv layer, then the linear layer."""
        return [*self.convolutional_layers, self.linear_layer]

    def zero_grads(self) -> None:
        """Reset every dW and db to zeros."""
        for layer in self._parametrised_layers():
            layer.dW = np.zeros_like(layer.W)
            layer.db = np.zeros_like(layer.b)

    def step(self) -> None:
        """W -= lr * dW and b -= lr * db for every conv layer and the linear layer."""
        for layer in self._parametrised_layers():
            layer.W = layer.W - self.lr * layer.dW
            layer.b = layer.b - self.lr * layer.db

    @property
    def conv_W(self) -> list[FloatArray]:
        """Current W (out, in, k) of each conv layer."""
        return [conv.W for conv in self.convolutional_layers]

    @property
    def conv_b(self) -> list[FloatArray]:
        """Current b (out,) of each conv layer."""
        return [conv.b for conv in self.convolutional_layers]

    @property
    def conv_dW(self) -> list[FloatArray]:
        """dW (out, in, k) of each conv layer after ``backward`` (sum over the batch)."""
        return [conv.dW for conv in self.convolutional_layers]

    @property
    def conv_db(self) -> list[FloatArray]:
        """db (out,) of each conv layer after ``backward`` (sum over the batch)."""
        return [conv.db for conv in self.convolutional_layers]

    @property
    def linear_dW(self) -> FloatArray:
        """dW (in, out) of the linear layer after ``backward`` (batch average)."""
        return self.linear_layer.dW

    @property
    def linear_db(self) -> FloatArray:
        """db (shape of the linear b) after ``backward`` (batch average)."""
        return self.linear_layer.db


def cnn_input_gradient(
    conv_params: Sequence[ConvParams],
    strides: Sequence[int],
    linear_params: LinearParams,
    activations: Sequence[str],
    x: FloatArray,
    labels: FloatArray,
) -> FloatArray:
    """dx (batch, in_channels, input_width) of the CNN for x and one-hot labels (batch, neurons).

    The argument order is the one CNN_DX_VARIANTS in bug_variants.py use.
    """
    model = ReferenceCNN(conv_params, strides, linear_params, activations, lr=0.0)
    model.forward(x)
    return model.backward(labels)
