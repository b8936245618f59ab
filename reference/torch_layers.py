"""Trusted PyTorch reference modules (Caltech EE 150 problem set 3, Waterloo CS 480 A2).

Every module here has the constructor arguments, parameter names and shapes of the
student-facing class it checks, so the grader can build both with the same arguments,
load one ``state_dict`` into both and compare outputs and gradients.

Conventions (all batch-first):

* Conv2d / FasterConv2d: cross-correlation, x (N, C_in, H, W) -> (N, C_out, H_out, W_out),
  ``H_out = (H + 2 * padding - kernel_size) // stride + 1``; parameters ``weight``
  (C_out, C_in, k, k) and ``bias`` (C_out,), as ``torch.nn.Conv2d``.
* RNNLayer: ``h_t = tanh(W_xh x_t + W_hh h_{t-1})`` (both Linear layers carry a bias),
  h_0 = 0; x (N, T, I) -> every hidden state (N, T, H).
* LSTMLayer: the handout's gate equations on z_t = [h_{t-1}, x_t] (hidden state FIRST):
  F = sigmoid(W_f z), I = sigmoid(W_i z), C~ = tanh(W_c z), O = sigmoid(W_o z),
  C_t = F * C_{t-1} + I * C~, h_t = O * tanh(C_t); x (N, T, I) -> (N, T, H).
* RNN / LSTM: the layer, then ``fc`` on the last hidden state: (N, T, I) -> (N, output_size).
* SelfAttention: one head, Q, K, V = query(x), key(x), value(x) (each E -> E),
  softmax(Q K^T / sqrt(E)) V over the key axis; x (N, T, E) -> (N, T, E).
* MultiHeadAttention: query/key/value/out Linear(E, E); heads split the last axis in
  ``num_heads`` blocks of d_k = E // num_heads; x (N, T, E) -> (N, T, E).
* TransformerEncoderLayer: post-LN (the EE 150 handout, and torch's default)
  ``x = norm1(x + attention(x)); x = norm2(x + feed_forward(x))``, or pre-LN with
  ``norm_first=True``; feed_forward = Linear(E, F), ReLU, Linear(F, E); no dropout.
* MLPinPyTorch: W1 (3072, 256), b1 (256,), W2 (256, 10), b2 (10,);
  softmax(sigmoid(x W1 + b1) W2 + b2), x (N, 3072) or (N, 3, 32, 32) -> probabilities (N, 10).

The ``*_to_torch`` functions build the equivalent ``torch.nn`` module with copied weights:
they are the oracles of tests/reference/test_torch_layers.py.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "conv2d_out_size",
    "Conv2d",
    "FasterConv2d",
    "RNNLayer",
    "RNN",
    "LSTMLayer",
    "LSTM",
    "SelfAttention",
    "MultiHeadAttention",
    "TransformerEncoderLayer",
    "MLPinPyTorch",
    "accuracy",
    "attention_weights",
    "rnn_to_torch",
    "lstm_to_torch",
    "self_attention_to_torch",
    "mha_to_torch",
    "encoder_layer_to_torch",
]


# --------------------------------------------------------------------------- convolution


def conv2d_out_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a 2-D cross-correlation: (size + 2p - k) // s + 1.

    Raises ValueError when the kernel does not fit the padded input or an argument is invalid.
    """
    if kernel_size < 1 or stride < 1 or padding < 0:
        raise ValueError(f"need kernel_size, stride >= 1 and padding >= 0, got "
                         f"{kernel_size}, {stride}, {padding}")
    if kernel_size > size + 2 * padding:
        raise ValueError(f"kernel_size {kernel_size} larger than the padded input "
                         f"{size + 2 * padding}")
    return (size + 2 * padding - kernel_size) // stride + 1


class Conv2d(nn.Module):
    """2-D cross-correlation written with explicit loops over output positions.

    weight (out_channels, in_channels, kernel_size, kernel_size), bias (out_channels,),
    initialised as ``torch.nn.Conv2d`` does. forward: x (N, C_in, H, W) -> (N, C_out, H_out,
    W_out) with ``H_out = conv2d_out_size(H, kernel_size, stride, padding)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int,
        stride: int = 1, padding: int = 0,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform weight and uniform(+-1/sqrt(fan_in)) bias, like torch.nn.Conv2d."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.in_channels * self.kernel_size**2)
        nn.init.uniform_(self.bias, -bound, bound)

    def output_shape(self, height: int, width: int) -> tuple[int, int]:
        """(H_out, W_out) for an input of spatial size (height, width)."""
        k, s, p = self.kernel_size, self.stride, self.padding
        return conv2d_out_size(height, k, s, p), conv2d_out_size(width, k, s, p)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C_in, H, W) -> (N, C_out, H_out, W_out)."""
        h_out, w_out = self.output_shape(x.shape[2], x.shape[3])
        padded = F.pad(x, [self.padding] * 4)
        k, s = self.kernel_size, self.stride
        rows = []
        for i in range(h_out):
            columns = []
            for j in range(w_out):
                patch = padded[:, :, i * s : i * s + k, j * s : j * s + k]
                columns.append(torch.einsum("nckl,ockl->no", patch, self.weight))
            rows.append(torch.stack(columns, dim=-1))
        return torch.stack(rows, dim=-2) + self.bias[None, :, None, None]


class FasterConv2d(Conv2d):
    """Conv2d as one matrix product over unfolded patches (im2col); same shapes as Conv2d."""

    def forward(self, x: Tensor) -> Tensor:
        """x (N, C_in, H, W) -> (N, C_out, H_out, W_out)."""
        h_out, w_out = self.output_shape(x.shape[2], x.shape[3])
        # (N, C_in * k * k, H_out * W_out), patch entries ordered (c, row, column) like weight
        columns = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        out = self.weight.reshape(self.out_channels, -1) @ columns
        return out.reshape(x.shape[0], self.out_channels, h_out, w_out) + self.bias[:, None, None]


# --------------------------------------------------------------------------- recurrent layers


class RNNLayer(nn.Module):
    """Elman RNN with tanh: h_t = tanh(W_xh x_t + W_hh h_{t-1}), h_0 = 0.

    W_xh Linear(input_size, hidden_size), W_hh Linear(hidden_size, hidden_size).
    forward: x (N, T, input_size) -> hidden states (N, T, hidden_size).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_xh = nn.Linear(input_size, hidden_size)
        self.W_hh = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, input_size) -> (N, T, hidden_size)."""
        h = x.new_zeros(x.shape[0], self.hidden_size)
        states = []
        for t in range(x.shape[1]):
            h = torch.tanh(self.W_xh(x[:, t]) + self.W_hh(h))
            states.append(h)
        return torch.stack(states, dim=1)


class LSTMLayer(nn.Module):
    """LSTM with the handout's gates on z_t = [h_{t-1}, x_t] (hidden state first).

    W_f, W_i, W_c, W_o: Linear(hidden_size + input_size, hidden_size) for the forget gate,
    input gate, candidate and output gate; h_0 = C_0 = 0.
    forward: x (N, T, input_size) -> hidden states (N, T, hidden_size).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.W_f = nn.Linear(hidden_size + input_size, hidden_size)
        self.W_i = nn.Linear(hidden_size + input_size, hidden_size)
        self.W_c = nn.Linear(hidden_size + input_size, hidden_size)
        self.W_o = nn.Linear(hidden_size + input_size, hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, input_size) -> (N, T, hidden_size)."""
        h = x.new_zeros(x.shape[0], self.hidden_size)
        c = x.new_zeros(x.shape[0], self.hidden_size)
        states = []
        for t in range(x.shape[1]):
            z = torch.cat([h, x[:, t]], dim=1)
            forget, remember = torch.sigmoid(self.W_f(z)), torch.sigmoid(self.W_i(z))
            candidate, output = torch.tanh(self.W_c(z)), torch.sigmoid(self.W_o(z))
            c = forget * c + remember * candidate
            h = output * torch.tanh(c)
            states.append(h)
        return torch.stack(states, dim=1)


class RNN(nn.Module):
    """RNNLayer, then ``fc`` Linear(hidden_size, output_size) on the last hidden state.

    forward: x (N, T, input_size) -> (N, output_size).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = RNNLayer(input_size, hidden_size)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, input_size) -> (N, output_size)."""
        out: Tensor = self.fc(self.rnn(x)[:, -1])
        return out


class LSTM(nn.Module):
    """LSTMLayer, then ``fc`` Linear(hidden_size, output_size) on the last hidden state.

    forward: x (N, T, input_size) -> (N, output_size).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.lstm = LSTMLayer(input_size, hidden_size)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, input_size) -> (N, output_size)."""
        out: Tensor = self.fc(self.lstm(x)[:, -1])
        return out


# --------------------------------------------------------------------------- attention


def attention_weights(q: Tensor, k: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d_k)) over the key axis.

    q (..., T, d_k), k (..., S, d_k) -> weights (..., T, S), each row summing to 1.
    """
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)


class SelfAttention(nn.Module):
    """Single-head scaled dot-product self-attention (no output projection).

    query, key, value: Linear(embed_dim, embed_dim).
    forward: x (N, T, E) -> softmax(Q K^T / sqrt(E)) V, (N, T, E).
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, E) -> (N, T, E)."""
        out: Tensor = attention_weights(self.query(x), self.key(x)) @ self.value(x)
        return out


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention as in "Attention is all you need" (no dropout, no mask).

    query, key, value, out: Linear(embed_dim, embed_dim); head h uses columns
    h*d_k:(h+1)*d_k of the projections, d_k = embed_dim // num_heads.
    forward: x (N, T, E) -> (N, T, E).
    """

    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.d_k = embed_dim // num_heads
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.out = nn.Linear(embed_dim, embed_dim)

    def split_heads(self, x: Tensor) -> Tensor:
        """(N, T, E) -> (N, num_heads, T, d_k)."""
        n, t, _ = x.shape
        return x.reshape(n, t, self.num_heads, self.d_k).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, E) -> (N, T, E)."""
        q, k, v = (self.split_heads(p(x)) for p in (self.query, self.key, self.value))
        heads = attention_weights(q, k) @ v  # (N, heads, T, d_k)
        out: Tensor = self.out(heads.transpose(1, 2).reshape(x.shape))
        return out


class TransformerEncoderLayer(nn.Module):
    """Transformer encoder layer: attention and feed-forward blocks with residuals and LayerNorm.

    attention MultiHeadAttention(E, num_heads), norm1/norm2 LayerNorm(E), feed_forward
    Sequential(Linear(E, ff_dim), ReLU, Linear(ff_dim, E)). Post-LN by default:
    x = norm1(x + attention(x)); x = norm2(x + feed_forward(x)). With ``norm_first``:
    x = x + attention(norm1(x)); x = x + feed_forward(norm2(x)).
    forward: x (N, T, E) -> (N, T, E).
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int,
                 norm_first: bool = False) -> None:
        super().__init__()
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(embed_dim, num_heads)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim)
        )
        self.norm2 = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, E) -> (N, T, E)."""
        if self.norm_first:
            x = x + self.attention(self.norm1(x))
            out: Tensor = x + self.feed_forward(self.norm2(x))
            return out
        x = self.norm1(x + self.attention(x))
        out = self.norm2(x + self.feed_forward(x))
        return out


# --------------------------------------------------------------------------- CS 480 MLP


class MLPinPyTorch(nn.Module):
    """One hidden layer of 256 sigmoid units and a softmax output over 10 classes.

    W1 (3072, 256), b1 (256,), W2 (256, 10), b2 (10,), initialised N(0, 0.01^2) / zeros.
    forward: x (N, 3072) or (N, 3, 32, 32) -> class probabilities (N, 10).
    """

    def __init__(self, in_features: int = 3072, hidden: int = 256, classes: int = 10) -> None:
        super().__init__()
        self.W1 = nn.Parameter(torch.randn(in_features, hidden) * 0.01)
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.W2 = nn.Parameter(torch.randn(hidden, classes) * 0.01)
        self.b2 = nn.Parameter(torch.zeros(classes))

    def forward(self, x: Tensor) -> Tensor:
        """x (N, 3072) or (N, 3, 32, 32) -> (N, 10), each row summing to 1."""
        hidden = torch.sigmoid(x.reshape(x.shape[0], -1) @ self.W1 + self.b1)
        return torch.softmax(hidden @ self.W2 + self.b2, dim=1)


def accuracy(y: Tensor, predicted: Tensor) -> float:
    """Fraction of rows whose most probable class is the true class.

    y (N, C) one-hot labels (or (N,) class indices), predicted (N, C) scores -> float in [0, 1].
    """
    labels = y.argmax(dim=1) if y.ndim == 2 else y
    return float((predicted.argmax(dim=1) == labels).to(torch.float64).mean())


# --------------------------------------------------------------------------- torch oracles


def rnn_to_torch(layer: RNNLayer) -> nn.RNN:
    """torch.nn.RNN (tanh, batch_first) with ``layer``'s weights."""
    rnn = nn.RNN(layer.input_size, layer.hidden_size, batch_first=True,
                 dtype=layer.W_xh.weight.dtype)
    rnn.load_state_dict({
        "weight_ih_l0": layer.W_xh.weight, "bias_ih_l0": layer.W_xh.bias,
        "weight_hh_l0": layer.W_hh.weight, "bias_hh_l0": layer.W_hh.bias,
    })
    return rnn


def lstm_to_torch(layer: LSTMLayer) -> nn.LSTM:
    """torch.nn.LSTM (batch_first) with ``layer``'s weights; torch stacks gates as i, f, g, o."""
    hidden = layer.hidden_size
    lstm = nn.LSTM(layer.input_size, hidden, batch_first=True, dtype=layer.W_f.weight.dtype)
    gates = (layer.W_i, layer.W_f, layer.W_c, layer.W_o)
    lstm.load_state_dict({
        "weight_ih_l0": torch.cat([g.weight[:, hidden:] for g in gates]),
        "weight_hh_l0": torch.cat([g.weight[:, :hidden] for g in gates]),
        "bias_ih_l0": torch.cat([g.bias for g in gates]),
        "bias_hh_l0": torch.zeros(4 * hidden, dtype=layer.W_f.bias.dtype),
    })
    return lstm


def mha_to_torch(layer: MultiHeadAttention) -> nn.MultiheadAttention:
    """torch.nn.MultiheadAttention (batch_first) with ``layer``'s weights."""
    mha = nn.MultiheadAttention(layer.embed_dim, layer.num_heads, batch_first=True,
                                dtype=layer.query.weight.dtype)
    _copy_attention(mha, layer.query, layer.key, layer.value)
    with torch.no_grad():
        mha.out_proj.weight.copy_(layer.out.weight)
        mha.out_proj.bias.copy_(layer.out.bias)
    return mha


def self_attention_to_torch(layer: SelfAttention) -> nn.MultiheadAttention:
    """One-head torch.nn.MultiheadAttention with ``layer``'s projections and an identity output."""
    mha = nn.MultiheadAttention(layer.embed_dim, 1, batch_first=True,
                                dtype=layer.query.weight.dtype)
    _copy_attention(mha, layer.query, layer.key, layer.value)
    with torch.no_grad():
        mha.out_proj.weight.copy_(torch.eye(layer.embed_dim))
        mha.out_proj.bias.zero_()
    return mha


def _copy_attention(mha: nn.MultiheadAttention, *projections: nn.Linear) -> None:
    assert mha.in_proj_weight is not None and mha.in_proj_bias is not None
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([p.weight for p in projections]))
        mha.in_proj_bias.copy_(torch.cat([p.bias for p in projections]))


def encoder_layer_to_torch(layer: TransformerEncoderLayer) -> nn.TransformerEncoderLayer:
    """torch.nn.TransformerEncoderLayer (ReLU, no dropout, batch_first) with ``layer``'s weights."""
    attention = layer.attention
    ff_in, ff_out = layer.feed_forward[0], layer.feed_forward[2]
    assert isinstance(ff_in, nn.Linear) and isinstance(ff_out, nn.Linear)
    torch_layer = nn.TransformerEncoderLayer(
        attention.embed_dim, attention.num_heads, ff_in.out_features, dropout=0.0,
        batch_first=True, norm_first=layer.norm_first, dtype=ff_in.weight.dtype,
    )
    torch_layer.self_attn = mha_to_torch(attention)
    pairs = ((torch_layer.linear1, ff_in), (torch_layer.linear2, ff_out),
             (torch_layer.norm1, layer.norm1), (torch_layer.norm2, layer.norm2))
    with torch.no_grad():
        for target, source in pairs:
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
    return torch_layer
