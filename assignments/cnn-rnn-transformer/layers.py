"""Trusted reference layers for Caltech EE 150 problem set 3, on the course's interface.

Each module has the constructor arguments, parameter names and shapes of the class in the
course's ``psthree`` starter (Winter 2025 handout), so the grader builds both with the same
arguments, loads one set of weights into both and compares outputs and gradients:

* ``Conv2d(in_channels, out_channels, filter_size, padding=0, stride=1)``: parameters
  ``filters`` (C_out, C_in, F, F) and ``biases`` (C_out,); cross-correlation, x (B, C_in, H, W)
  -> (B, C_out, H_out, W_out) with ``H_out = (H + 2 * padding - F) // stride + 1``.
* ``RNNLayer(input_size, hidden_size, output_size)``: ``W_xh`` (I, H), ``W_hh`` (H, H),
  ``b_h``, ``W_hy`` (H, O), ``b_y``; ``h_t = tanh(h_{t-1} W_hh + x_t W_xh + b_h)``,
  ``y_t = h_t W_hy + b_y``; x (B, T, I) -> every y_t, (B, T, O).
* ``LSTMLayer(input_size, hidden_size, output_size)``: per gate g in i, f, o, c the weights
  ``W_xg`` (I, H), ``W_hg`` (H, H) and ``b_g``; then ``W_hy``, ``b_y``; the handout's
  equations (F, I, O sigmoid, candidate tanh, C_t = F C_{t-1} + I C~, h_t = O tanh(C_t)).
* ``SelfAttention(d_model)``: ``W_q``, ``W_k``, ``W_v`` = Linear(d, d);
  softmax(Q K^T / sqrt(d)) V over the keys.
* ``MultiHeadAttention(d_model, num_heads)``: adds ``W_o``; heads are blocks of
  d_k = d_model // num_heads of the last axis; scores scaled by 1/sqrt(d_k).
* ``TransformerEncoder(d_model, num_heads, d_ff, output_size)``: ``attention``, ``norm1``,
  ``ff`` (Linear, ReLU, Linear), ``norm2``, ``output_layer``; post-LN:
  ``x = norm1(x + attention(x)); x = norm2(x + ff(x)); output_layer(x)``.

Options accept what the handout allows besides the starter's choice: ``column=True`` stores
the recurrent weights transposed, (n_out, n_in), as the handout's equations write them
(``W_xh x_t``); ``softmax=True`` applies the softmax the LSTM equations put on y_t;
``norm_first=True`` normalises before each sublayer (pre-LN).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Conv2d", "RNNLayer", "LSTMLayer", "SelfAttention", "MultiHeadAttention",
           "TransformerEncoder", "GATES"]

GATES = ("i", "f", "o", "c")


class Conv2d(nn.Module):
    """The course's Conv2d (and FasterConv2d: the same function)."""

    def __init__(self, in_channels: int, out_channels: int, filter_size: int,
                 padding: int = 0, stride: int = 1) -> None:
        super().__init__()
        self.padding, self.stride = padding, stride
        self.filters = nn.Parameter(torch.randn(out_channels, in_channels, filter_size,
                                                filter_size))
        self.biases = nn.Parameter(torch.randn(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.filters, self.biases, stride=self.stride, padding=self.padding)


def _weight(n_in: int, n_out: int, column: bool) -> nn.Parameter:
    shape = (n_out, n_in) if column else (n_in, n_out)
    return nn.Parameter(torch.randn(*shape) * math.sqrt(2 / (n_in + n_out)))


def _apply(x: Tensor, weight: Tensor, column: bool) -> Tensor:
    """x (..., n_in) times a weight stored (n_in, n_out), or (n_out, n_in) when column."""
    return x @ weight.T if column else x @ weight


class RNNLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 column: bool = False, softmax: bool = False) -> None:
        super().__init__()
        self.hidden_size, self.column, self.softmax = hidden_size, column, softmax
        self.W_xh = _weight(input_size, hidden_size, column)
        self.W_hh = _weight(hidden_size, hidden_size, column)
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_hy = _weight(hidden_size, output_size, column)
        self.b_y = nn.Parameter(torch.zeros(output_size))

    def step(self, x_t: Tensor, h: Tensor) -> Tensor:
        return torch.tanh(_apply(h, self.W_hh, self.column) + _apply(x_t, self.W_xh, self.column)
                          + self.b_h)

    def forward(self, x: Tensor) -> Tensor:
        h = x.new_zeros(x.shape[0], self.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            h = self.step(x[:, t], h)
            outputs.append(_apply(h, self.W_hy, self.column) + self.b_y)
        y = torch.stack(outputs, dim=1)
        return torch.softmax(y, dim=-1) if self.softmax else y


class LSTMLayer(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 column: bool = False, softmax: bool = False) -> None:
        super().__init__()
        self.hidden_size, self.column, self.softmax = hidden_size, column, softmax
        for gate in GATES:
            setattr(self, f"W_x{gate}", _weight(input_size, hidden_size, column))
            setattr(self, f"W_h{gate}", _weight(hidden_size, hidden_size, column))
            setattr(self, f"b_{gate}", nn.Parameter(torch.zeros(hidden_size)))
        self.W_hy = _weight(hidden_size, output_size, column)
        self.b_y = nn.Parameter(torch.zeros(output_size))

    def gate(self, name: str, x_t: Tensor, h: Tensor) -> Tensor:
        w_x, w_h = getattr(self, f"W_x{name}"), getattr(self, f"W_h{name}")
        pre: Tensor = (_apply(x_t, w_x, self.column) + _apply(h, w_h, self.column)
                       + getattr(self, f"b_{name}"))
        return torch.tanh(pre) if name == "c" else torch.sigmoid(pre)

    def cell(self, x_t: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        c = self.gate("f", x_t, h) * c + self.gate("i", x_t, h) * self.gate("c", x_t, h)
        return self.gate("o", x_t, h) * torch.tanh(c), c

    def forward(self, x: Tensor) -> Tensor:
        h = x.new_zeros(x.shape[0], self.hidden_size)
        c = x.new_zeros(x.shape[0], self.hidden_size)
        outputs = []
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], h, c)
            outputs.append(_apply(h, self.W_hy, self.column) + self.b_y)
        y = torch.stack(outputs, dim=1)
        return torch.softmax(y, dim=-1) if self.softmax else y


class SelfAttention(nn.Module):
    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.W_q, self.W_k, self.W_v = (nn.Linear(d_model, d_model) for _ in range(3))

    def forward(self, x: Tensor) -> Tensor:
        scores = self.W_q(x) @ self.W_k(x).transpose(-2, -1) / math.sqrt(self.d_model)
        out: Tensor = torch.softmax(scores, dim=-1) @ self.W_v(x)
        return out


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int) -> None:
        super().__init__()
        self.d_model, self.num_heads, self.d_k = d_model, num_heads, d_model // num_heads
        self.W_q, self.W_k, self.W_v, self.W_o = (nn.Linear(d_model, d_model) for _ in range(4))

    def split(self, x: Tensor) -> Tensor:
        """(B, T, d_model) -> (B, heads, T, d_k)."""
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, self.d_k).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.split(self.W_q(x)), self.split(self.W_k(x)), self.split(self.W_v(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.d_k), dim=-1)
        out: Tensor = self.W_o((weights @ v).transpose(1, 2).reshape(x.shape))
        return out


class TransformerEncoder(nn.Module):
    def __init__(self, d_model: int, num_heads: int, d_ff: int, output_size: int,
                 norm_first: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.output_layer = nn.Linear(d_model, output_size)

    def forward(self, x: Tensor) -> Tensor:
        if self.norm_first:
            x = x + self.attention(self.norm1(x))
            x = x + self.ff(self.norm2(x))
        else:
            x = self.norm1(x + self.attention(x))
            x = self.norm2(x + self.ff(x))
        out: Tensor = self.output_layer(x)
        return out
