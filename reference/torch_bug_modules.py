"""The wrong modules behind ``reference.torch_bugs``: one class per reference, one mode per bug.

Convolution, recurrent and attention layers here; transformer layers and the CS 480 MLP
in ``reference.torch_bug_models``.

Every buggy class subclasses its reference (same constructor arguments, same parameter
names and shapes) and changes only ``forward``, so the grader can load the reference
``state_dict`` into it. The exception is :class:`UnregisteredAttention`, whose point is
that it registers nothing. Variants run on the trusted side only, so they may use
``torch.nn.functional.conv2d``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference.torch_layers import Conv2d as ReferenceConv2d
from reference.torch_layers import LSTMLayer as ReferenceLSTMLayer
from reference.torch_layers import MultiHeadAttention, RNNLayer, SelfAttention

UNREGISTERED_HINT = (
    "Some of your layers are not registered as parameters of the module: create every "
    "nn.Linear / nn.Parameter in __init__ and assign it to self. A layer built inside "
    "forward gets fresh random weights on every call and is never trained."
)


@dataclass(frozen=True)
class BugSpec:
    """A bug: its name, hint, how to build it, and how it is recognised."""

    name: str
    hint: str
    build: Callable[..., nn.Module]
    by: Literal["output", "parameters"] = "output"


def with_layer(model: nn.Module, attribute: str, layer: nn.Module) -> nn.Module:
    """``model`` with its submodule ``attribute`` replaced by ``layer``."""
    setattr(model, attribute, layer)
    return model


# --------------------------------------------------------------------------- convolution


class BuggyConv2d(ReferenceConv2d):
    """Conv2d with one bug (``mode``); x (N, C_in, H, W) -> (N, C_out, H', W')."""

    def __init__(self, *args: int, mode: str = "", **kwargs: int) -> None:
        super().__init__(*args, **kwargs)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        weight: Tensor = self.weight
        bias = self.bias
        stride, padding = self.stride, self.padding
        if self.mode == "patch_order":
            columns = F.unfold(x, self.kernel_size, padding=padding, stride=stride)
            flat = weight.permute(0, 2, 3, 1).reshape(self.out_channels, -1)
            h_out, w_out = self.output_shape(x.shape[2], x.shape[3])
            out = (flat @ columns).reshape(x.shape[0], -1, h_out, w_out)
            return out + bias[:, None, None]
        if self.mode == "flipped_kernel":
            weight = weight.flip(-1, -2)
        out = F.conv2d(x, weight, None if self.mode == "missing_bias" else bias,
                       1 if self.mode == "stride_ignored" else stride,
                       0 if self.mode == "padding_ignored" else padding)
        return out[..., :-1, :-1] if self.mode == "off_by_one" else out


def _conv(mode: str) -> Callable[..., nn.Module]:
    return partial(BuggyConv2d, mode=mode)


CONV_BUGS = [
    BugSpec("conv_flipped_kernel",
            "Your output matches a convolution with the kernel flipped: Conv2d computes a "
            "cross-correlation, y[n, o, i, j] = sum over c, k, l of weight[o, c, k, l] * "
            "x_padded[n, c, i*stride + k, j*stride + l] + bias[o].", _conv("flipped_kernel")),
    BugSpec("conv_missing_bias",
            "Your output matches the result without the bias: add bias[o] to every output "
            "position of channel o.", _conv("missing_bias")),
    BugSpec("conv_off_by_one",
            "Your output size is off by one: H_out = (H + 2*padding - kernel_size) // stride + 1, "
            "and the same for W_out.", _conv("off_by_one")),
    BugSpec("conv_padding_ignored",
            "Your output matches a convolution without padding: pad the input with `padding` "
            "zeros on every side before sliding the kernel.", _conv("padding_ignored")),
    BugSpec("conv_stride_ignored",
            "Your output matches a convolution with stride 1: the window of output (i, j) "
            "starts at row i*stride and column j*stride.", _conv("stride_ignored")),
]

FASTER_CONV_BUGS = [
    *CONV_BUGS,
    BugSpec("conv_patch_order",
            "Your output matches weights flattened in a different order from the patches: "
            "unfold orders each patch as (channel, row, column), which is the order of "
            "weight.reshape(out_channels, -1).", _conv("patch_order")),
]


# --------------------------------------------------------------------------- recurrent


class BuggyRNNLayer(RNNLayer):
    """RNNLayer with one bug (``mode``); x (N, T, I) -> (N, T, H) or (N, H)."""

    def __init__(self, input_size: int, hidden_size: int, mode: str = "") -> None:
        super().__init__(input_size, hidden_size)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        activation = torch.relu if self.mode == "relu_cell" else torch.tanh
        zeros = x.new_zeros(x.shape[0], self.hidden_size)
        h, states = zeros, []
        for t in range(x.shape[1]):
            previous = zeros if self.mode == "no_recurrence" else h
            h = activation(self.W_xh(x[:, t]) + self.W_hh(previous))
            states.append(h)
        return h if self.mode == "returns_last_state" else torch.stack(states, dim=1)


class BuggyLSTMLayer(ReferenceLSTMLayer):
    """LSTMLayer with one bug (``mode``); x (N, T, I) -> (N, T, H) or (N, H)."""

    def __init__(self, input_size: int, hidden_size: int, mode: str = "") -> None:
        super().__init__(input_size, hidden_size)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        m = self.mode
        zeros = x.new_zeros(x.shape[0], self.hidden_size)
        h, c, states = zeros, zeros, []
        for t in range(x.shape[1]):
            z = torch.cat([x[:, t], h] if m == "concat_order" else [h, x[:, t]], dim=1)
            forget, remember = torch.sigmoid(self.W_f(z)), torch.sigmoid(self.W_i(z))
            if m == "forget_input_swapped":
                forget, remember = remember, forget
            squash = torch.sigmoid if m == "sigmoid_candidate" else torch.tanh
            candidate, output = squash(self.W_c(z)), torch.sigmoid(self.W_o(z))
            c = forget * (zeros if m == "cell_not_carried" else c) + remember * candidate
            h = output * (c if m == "no_cell_tanh" else torch.tanh(c))
            states.append(h)
        return h if m == "returns_last_state" else torch.stack(states, dim=1)


class UnregisteredRecurrent(nn.Module):
    """A recurrent layer whose Linear layers are built inside forward (nothing registered)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size

    def forward(self, x: Tensor) -> Tensor:
        W_xh = nn.Linear(self.input_size, self.hidden_size, dtype=x.dtype)
        W_hh = nn.Linear(self.hidden_size, self.hidden_size, dtype=x.dtype)
        h, states = x.new_zeros(x.shape[0], self.hidden_size), []
        for t in range(x.shape[1]):
            h = torch.tanh(W_xh(x[:, t]) + W_hh(h))
            states.append(h)
        return torch.stack(states, dim=1)


_LAST_STATE_HINT = ("forward must return the hidden state of every time step, shape "
                    "(N, T, hidden_size), not only the last one.")

RNN_BUGS = [
    BugSpec("rnn_relu_cell",
            "Your output matches an RNN cell with ReLU: the cell uses tanh, "
            "h_t = tanh(W_xh x_t + W_hh h_{t-1}).", partial(BuggyRNNLayer, mode="relu_cell")),
    BugSpec("rnn_no_recurrence",
            "Your output matches an RNN whose hidden state is never carried over: feed "
            "h_{t-1} (not zeros) into W_hh at every step.",
            partial(BuggyRNNLayer, mode="no_recurrence")),
    BugSpec("returns_last_state", _LAST_STATE_HINT,
            partial(BuggyRNNLayer, mode="returns_last_state")),
    BugSpec("unregistered_layers", UNREGISTERED_HINT, UnregisteredRecurrent, "parameters"),
]


def _lstm(mode: str) -> Callable[..., nn.Module]:
    return partial(BuggyLSTMLayer, mode=mode)


LSTM_BUGS = [
    BugSpec("lstm_forget_input_swapped",
            "Your output matches an LSTM with the forget and input gates exchanged (the forget "
            "gate scaling the candidate): C_t = F * C_{t-1} + I * C~_t, where F = "
            "sigmoid(W_f z_t) scales the old cell state and I = sigmoid(W_i z_t) the candidate.",
            _lstm("forget_input_swapped")),
    BugSpec("lstm_concat_order",
            "Your output matches an LSTM that concatenates [x_t, h_{t-1}]: the handout's "
            "z_t = [h_{t-1}, x_t] puts the hidden state first.", _lstm("concat_order")),
    BugSpec("lstm_no_cell_tanh",
            "Your output matches h_t = O * C_t: the hidden state is h_t = O * tanh(C_t).",
            _lstm("no_cell_tanh")),
    BugSpec("lstm_sigmoid_candidate",
            "Your output matches a candidate computed with a sigmoid: C~_t = tanh(W_c z_t).",
            _lstm("sigmoid_candidate")),
    BugSpec("lstm_cell_not_carried",
            "Your output matches an LSTM whose cell state restarts from zero at every step: "
            "C_t = F * C_{t-1} + I * C~_t needs the previous step's C.",
            _lstm("cell_not_carried")),
    BugSpec("returns_last_state", _LAST_STATE_HINT, _lstm("returns_last_state")),
    BugSpec("unregistered_layers", UNREGISTERED_HINT, UnregisteredRecurrent, "parameters"),
]


# --------------------------------------------------------------------------- attention


def attend(q: Tensor, k: Tensor, v: Tensor, scale: float, softmax_dim: int) -> Tensor:
    """softmax(q k^T / scale, softmax_dim) v for (..., T, d) tensors."""
    return torch.softmax(q @ k.transpose(-2, -1) / scale, dim=softmax_dim) @ v


_SCALES: dict[str, Callable[[int, int], float]] = {
    "sqrt_dk": lambda e, d: math.sqrt(d),
    "none": lambda e, d: 1.0,
    "dk": lambda e, d: float(d),
    "sqrt_embed": lambda e, d: math.sqrt(e),
}


class BuggySelfAttention(SelfAttention):
    """SelfAttention with one bug; x (N, T, E) -> (N, T, E)."""

    def __init__(self, embed_dim: int, value_from: str = "value", scale: str = "sqrt_dk",
                 softmax_dim: int = -1) -> None:
        super().__init__(embed_dim)
        self.value_from, self.scale, self.softmax_dim = value_from, scale, softmax_dim

    def forward(self, x: Tensor) -> Tensor:
        v = getattr(self, self.value_from)(x)
        scale = _SCALES[self.scale](self.embed_dim, self.embed_dim)
        return attend(self.query(x), self.key(x), v, scale, self.softmax_dim)


class BuggyMultiHeadAttention(MultiHeadAttention):
    """MultiHeadAttention with one bug; x (N, T, E) -> (N, T, E)."""

    def __init__(self, embed_dim: int, num_heads: int, value_from: str = "value",
                 scale: str = "sqrt_dk", softmax_dim: int = -1, split: str = "transpose",
                 project: bool = True) -> None:
        super().__init__(embed_dim, num_heads)
        self.value_from, self.scale, self.softmax_dim = value_from, scale, softmax_dim
        self.split, self.project = split, project

    def _heads(self, x: Tensor) -> Tensor:
        n, t, _ = x.shape
        if self.split == "reshape":  # (N, heads, T, d_k) straight from (N, T, E)
            return x.reshape(n, self.num_heads, t, self.d_k)
        return self.split_heads(x)

    def forward(self, x: Tensor) -> Tensor:
        v = getattr(self, self.value_from)(x)
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(v)
        scale = _SCALES[self.scale](self.embed_dim, self.d_k)
        heads = attend(q, k, v, scale, self.softmax_dim)
        if self.split == "reshape":
            joined = heads.reshape(x.shape)
        else:
            joined = heads.transpose(1, 2).reshape(x.shape)
        out: Tensor = self.out(joined) if self.project else joined
        return out


class UnregisteredAttention(nn.Module):
    """Attention whose projections are built inside forward (nothing registered)."""

    def __init__(self, embed_dim: int, num_heads: int = 1) -> None:
        super().__init__()
        self.embed_dim, self.num_heads = embed_dim, num_heads

    def forward(self, x: Tensor) -> Tensor:
        e = self.embed_dim
        q, k, v = (nn.Linear(e, e, dtype=x.dtype)(x) for _ in range(3))
        return attend(q, k, v, math.sqrt(e), -1)


_VALUE_KEY_HINT = ("Your output matches V computed with the key projection: the values are "
                   "V = value(x), with their own weights.")
_NO_SCALE_HINT = ("Your output matches attention without the 1/sqrt(d_k) scaling: "
                  "softmax(Q K^T / sqrt(d_k)) V.")
_BY_DK_HINT = "Your output matches scores divided by d_k: divide by sqrt(d_k)."
_AXIS_HINT = ("Your output matches a softmax over the query axis: normalise over the keys, "
              "softmax(scores, dim=-1), so each output row is a weighted average of the values.")


def _attention(**flags: Any) -> Callable[..., nn.Module]:
    return partial(BuggySelfAttention, **flags)


def _multi_head(**flags: Any) -> Callable[..., nn.Module]:
    return partial(BuggyMultiHeadAttention, **flags)


ATTENTION_BUGS = [
    BugSpec("unregistered_projections", UNREGISTERED_HINT, UnregisteredAttention, "parameters"),
    BugSpec("value_uses_key", _VALUE_KEY_HINT, _attention(value_from="key")),
    BugSpec("no_scaling", _NO_SCALE_HINT, _attention(scale="none")),
    BugSpec("scaled_by_dk", _BY_DK_HINT, _attention(scale="dk")),
    BugSpec("softmax_wrong_axis", _AXIS_HINT, _attention(softmax_dim=-2)),
]

MULTI_HEAD_BUGS = [
    BugSpec("unregistered_projections", UNREGISTERED_HINT, UnregisteredAttention, "parameters"),
    BugSpec("value_uses_key", _VALUE_KEY_HINT, _multi_head(value_from="key")),
    BugSpec("no_scaling", _NO_SCALE_HINT, _multi_head(scale="none")),
    BugSpec("scaled_by_dk", _BY_DK_HINT, _multi_head(scale="dk")),
    BugSpec("scaled_by_embed_dim",
            "Your output matches scores divided by sqrt(embed_dim): each head divides by "
            "sqrt(d_k), d_k = embed_dim // num_heads.", _multi_head(scale="sqrt_embed")),
    BugSpec("softmax_wrong_axis", _AXIS_HINT, _multi_head(softmax_dim=-2)),
    BugSpec("heads_split_without_transpose",
            "Your output matches heads split with a bare reshape to (N, heads, T, d_k), which "
            "mixes time steps across heads: reshape to (N, T, heads, d_k), then transpose(1, 2).",
            _multi_head(split="reshape")),
    BugSpec("missing_output_projection",
            "Your output matches the concatenated heads without the output projection: apply "
            "self.out to them.", _multi_head(project=False)),
]
