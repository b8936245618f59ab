"""Known-bug variants of the EE 150 set 3 reference layers (``layers.py``), for the
targeted hints of ``torch.module_compare`` (``variants = "layer_bugs.py:X"``).

Every buggy class subclasses its reference (same constructor, same parameter names and
shapes) and changes one thing in ``forward``, so the grader loads the reference's weights
into it and asks whether it reproduces the student's answer. Trusted side only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import layers as ref

__all__ = ["CONV2D", "RNN_LAYER", "LSTM_LAYER", "SELF_ATTENTION", "MULTI_HEAD_ATTENTION",
           "TRANSFORMER_ENCODER", "Variant"]


@dataclass(frozen=True)
class Variant:
    name: str
    hint: str
    build: Callable[..., nn.Module]
    by: Literal["output", "parameters"] = "output"


def _with_mode(cls: type[nn.Module], mode: str) -> Callable[..., nn.Module]:
    def build(*args: Any, **kwargs: Any) -> nn.Module:
        module = cls(*args, **kwargs)
        setattr(module, "mode", mode)  # noqa: B010 - a plain attribute, not a submodule
        return module
    return build


# --------------------------------------------------------------------------- convolution


class BuggyConv2d(ref.Conv2d):
    mode = ""

    def forward(self, x: Tensor) -> Tensor:
        filters: Tensor = self.filters
        stride, padding = self.stride, self.padding
        if self.mode == "flipped":
            filters = filters.flip(-1, -2)
        if self.mode == "swapped":
            stride, padding = padding, stride
        if stride < 1:
            raise ValueError("stride 0")
        out = F.conv2d(x, filters, None if self.mode == "no_bias" else self.biases,
                       stride=stride, padding=padding)
        return out[:, :, :-1, :-1] if self.mode == "off_by_one" else out


CONV2D = [
    Variant("off_by_one", "Your output is one row and one column short: H_out = "
            "(H + 2P - F) // S + 1.", _with_mode(BuggyConv2d, "off_by_one")),
    Variant("flipped", "Your output matches a convolution with flipped filters: Conv2d here "
            "is a cross-correlation, filters[c, :, i, j] multiplies the window at (i, j) "
            "unflipped.", _with_mode(BuggyConv2d, "flipped")),
    Variant("swapped", "Your output matches padding and stride exchanged: the constructor is "
            "Conv2d(in_channels, out_channels, filter_size, padding=0, stride=1, ...).",
            _with_mode(BuggyConv2d, "swapped")),
    Variant("no_bias", "Your output matches the convolution without the biases: forward adds "
            "self.biases to what convolution returns.", _with_mode(BuggyConv2d, "no_bias")),
]

# --------------------------------------------------------------------------- recurrent


class BuggyRNNLayer(ref.RNNLayer):
    mode = ""

    def step(self, x_t: Tensor, h: Tensor) -> Tensor:
        recurrent = ref._apply(h, self.W_hh, self.column)
        if self.mode == "no_recurrence":
            recurrent = torch.zeros_like(recurrent)
        pre = recurrent + ref._apply(x_t, self.W_xh, self.column) + self.b_h
        return torch.relu(pre) if self.mode == "relu" else torch.tanh(pre)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode != "hidden":
            return super().forward(x)
        h, states = x.new_zeros(x.shape[0], self.hidden_size), []
        for t in range(x.shape[1]):
            h = self.step(x[:, t], h)
            states.append(h)
        return torch.stack(states, dim=1)


RNN_LAYER = [
    Variant("relu", "Your output matches an RNN cell with ReLU: the handout's sigma is tanh "
            "(nn.Tanh).", _with_mode(BuggyRNNLayer, "relu")),
    Variant("no_recurrence", "Your output matches a layer that ignores h_{t-1}: add "
            "h_{t-1} W_hh at every step, with the hidden state carried over.",
            _with_mode(BuggyRNNLayer, "no_recurrence")),
    Variant("hidden", "Your output has the hidden states' shape: each step's output is "
            "y_t = h_t W_hy + b_y, shape (B, T, output_size).",
            _with_mode(BuggyRNNLayer, "hidden")),
]


class BuggyLSTMLayer(ref.LSTMLayer):
    mode = ""

    def gate(self, name: str, x_t: Tensor, h: Tensor) -> Tensor:
        if name == "c" and self.mode == "sigmoid_candidate":
            w_x, w_h, b = (getattr(self, n) for n in ("W_xc", "W_hc", "b_c"))
            return torch.sigmoid(ref._apply(x_t, w_x, self.column)
                                 + ref._apply(h, w_h, self.column) + b)
        return super().gate(name, x_t, h)

    def cell(self, x_t: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        forget, remember = self.gate("f", x_t, h), self.gate("i", x_t, h)
        if self.mode == "swapped":
            forget, remember = remember, forget
        c = forget * c + remember * self.gate("c", x_t, h)
        shown = c if self.mode == "no_tanh" else torch.tanh(c)
        return self.gate("o", x_t, h) * shown, c


LSTM_LAYER = [
    Variant("swapped", "Your output matches the forget and input gates exchanged: "
            "C_t = F_t * C_{t-1} + I_t * C~_t.", _with_mode(BuggyLSTMLayer, "swapped")),
    Variant("no_tanh", "Your output matches h_t = O_t * C_t: the hidden state is "
            "O_t * tanh(C_t).", _with_mode(BuggyLSTMLayer, "no_tanh")),
    Variant("sigmoid_candidate", "Your output matches a candidate memory through a sigmoid: "
            "C~_t uses tanh.", _with_mode(BuggyLSTMLayer, "sigmoid_candidate")),
]

# --------------------------------------------------------------------------- attention


def _attend(q: Tensor, k: Tensor, v: Tensor, scale: float, axis: int) -> Tensor:
    return torch.softmax(q @ k.transpose(-2, -1) * scale, dim=axis) @ v


class BuggySelfAttention(ref.SelfAttention):
    mode = ""

    def forward(self, x: Tensor) -> Tensor:
        scale = 1.0 if self.mode == "no_scaling" else 1 / math.sqrt(self.d_model)
        value = self.W_k(x) if self.mode == "value_uses_key" else self.W_v(x)
        axis = -2 if self.mode == "query_axis" else -1
        return _attend(self.W_q(x), self.W_k(x), value, scale, axis)


class BuggyMultiHeadAttention(ref.MultiHeadAttention):
    mode = ""

    def split(self, x: Tensor) -> Tensor:
        if self.mode == "reshape_heads":  # (B, T, d) straight to (B, heads, T, d_k)
            return x.reshape(x.shape[0], self.num_heads, x.shape[1], self.d_k)
        return super().split(x)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.split(self.W_q(x)), self.split(self.W_k(x)), self.split(self.W_v(x))
        scale = 1 / math.sqrt(self.d_model if self.mode == "by_d_model" else self.d_k)
        axis = -2 if self.mode == "query_axis" else -1
        joined = _attend(q, k, v, scale, axis).transpose(1, 2).reshape(x.shape)
        out: Tensor = joined if self.mode == "no_output" else self.W_o(joined)
        return out


SELF_ATTENTION = [
    Variant("no_scaling", "Your output matches attention without the 1/sqrt(d_k) scaling of "
            "the scores.", _with_mode(BuggySelfAttention, "no_scaling")),
    Variant("value_uses_key", "Your output matches V computed with the key projection: "
            "V = W_v(x).", _with_mode(BuggySelfAttention, "value_uses_key")),
    Variant("query_axis", "Your output matches a softmax over the query axis: each row of "
            "scores (one query against every key) must sum to 1, nn.Softmax(dim=-1).",
            _with_mode(BuggySelfAttention, "query_axis")),
]

MULTI_HEAD_ATTENTION = [
    Variant("by_d_model", "Your output matches scores scaled by 1/sqrt(d_model): each head "
            "scales by 1/sqrt(d_k), d_k = d_model // num_heads.",
            _with_mode(BuggyMultiHeadAttention, "by_d_model")),
    Variant("query_axis", "Your output matches a softmax over the query axis: normalise over "
            "the keys (the last axis).", _with_mode(BuggyMultiHeadAttention, "query_axis")),
    Variant("reshape_heads", "Your output matches heads made by one reshape to (B, heads, T, "
            "d_k): reshape to (B, T, heads, d_k) first, then transpose(1, 2).",
            _with_mode(BuggyMultiHeadAttention, "reshape_heads")),
    Variant("no_output", "Your output matches the concatenated heads without W_o: apply the "
            "final linear layer.", _with_mode(BuggyMultiHeadAttention, "no_output")),
]

# --------------------------------------------------------------------------- encoder


class BuggyEncoder(ref.TransformerEncoder):
    mode = ""

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "no_attention_residual":
            x = self.norm1(self.attention(x))
            x = self.norm2(x + self.ff(x))
        elif self.mode == "no_ff_residual":
            x = self.norm1(x + self.attention(x))
            x = self.norm2(self.ff(x))
        else:
            return super().forward(x)
        out: Tensor = self.output_layer(x)
        return out


def _encoder_with_attention(bug: Variant) -> Callable[..., nn.Module]:
    def build(d_model: int, num_heads: int, d_ff: int, output_size: int,
              **kwargs: Any) -> nn.Module:
        encoder = ref.TransformerEncoder(d_model, num_heads, d_ff, output_size, **kwargs)
        setattr(encoder, "attention", bug.build(d_model, num_heads))  # noqa: B010
        return encoder
    return build


TRANSFORMER_ENCODER = [
    Variant("no_attention_residual", "Your output matches an encoder without the residual "
            "connection around the attention: x = norm1(x + attention(x)).",
            _with_mode(BuggyEncoder, "no_attention_residual")),
    Variant("no_ff_residual", "Your output matches an encoder without the residual "
            "connection around the feed-forward network: x = norm2(x + ff(x)).",
            _with_mode(BuggyEncoder, "no_ff_residual")),
    *[Variant(f"attention_{b.name}", b.hint, _encoder_with_attention(b))
      for b in MULTI_HEAD_ATTENTION],
]
