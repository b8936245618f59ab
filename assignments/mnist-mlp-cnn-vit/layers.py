"""Trusted reference modules of the MNIST MLP / CNN / ViT homework (Berkeley CS 189 hw5 shape).

Parameter names and constructor arguments are those of the handout's classes, so the
grader can give both the same weights. All batch-first.

* SingleHeadAttention(d_model, d_k, dropout=0): W_q, W_k, W_v = Linear(d_model, d_k,
  bias=False); x (N, T, d_model) -> softmax(Q K^T / sqrt(d_k)) V, (N, T, d_k), the softmax
  over the key axis, dropout on the attention weights.
* MultiHeadAttention(d_model, num_heads, dropout=0): the handout's given code: ``heads`` =
  num_heads SingleHeadAttention(d_model, d_model // num_heads), concatenated;
  (N, T, d_model) -> (N, T, d_model). W^O is the encoder layer's ("add a nn.Linear layer
  without bias following the multi-head attention layer implemented in the notebook").
* PreLNEncoderLayer(d_model, num_heads, d_ff, dropout=0): pre-LN, with dropout "after the
  attention, inside the MLP, and after the MLP" and the MLP B(ReLU(A(x))):
  x = x + drop(W_o(attention(ln1(x)))); x = x + drop(B(drop(relu(A(ln2(x)))))).
  PreLNEncoderLayerDropoutFirst reads "dropout after the attention" as before W_o:
  x = x + W_o(drop(attention(ln1(x)))); both readings are accepted.
* ViT(image_size=28, patch_size=7, in_channels=1, num_classes=10, d_model=64, depth=6,
  num_heads=8, d_ff=128, dropout=0): non-overlapping patches -> Linear patch embedding,
  a learned class token and position embedding, ``depth`` encoder layers, LayerNorm, a
  Linear head on the class token; (N, C, H, W) -> scores (N, num_classes).
* MLP and CNN: the reference answers to the constrained models (<= 200 hidden units;
  < 50,000 parameters with Dropout and BatchNorm), used to calibrate the thresholds.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["SingleHeadAttention", "MultiHeadAttention", "PreLNEncoderLayer",
           "PreLNEncoderLayerDropoutFirst", "ViT", "MLP", "CNN", "patches"]


class SingleHeadAttention(nn.Module):
    """softmax(Q K^T / sqrt(d_k)) V with bias-free projections; (N, T, d_model) -> (N, T, d_k)."""

    def __init__(self, d_model: int, d_k: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.d_k = d_k
        self.W_q = nn.Linear(d_model, d_k, bias=False)
        self.W_k = nn.Linear(d_model, d_k, bias=False)
        self.W_v = nn.Linear(d_model, d_k, bias=False)
        self.dropout = nn.Dropout(dropout)

    def weights(self, x: Tensor) -> Tensor:
        """Attention weights (N, T, T); row i is query i's distribution over the keys."""
        scores = self.W_q(x) @ self.W_k(x).transpose(-2, -1) / math.sqrt(self.d_k)
        return torch.softmax(scores, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.dropout(self.weights(x)) @ self.W_v(x)
        return out


class MultiHeadAttention(nn.Module):
    """The handout's given code: num_heads single heads of width d_model // num_heads,
    concatenated along the last axis."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.heads = nn.ModuleList(
            SingleHeadAttention(d_model, d_model // num_heads, dropout) for _ in range(num_heads)
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([head(x) for head in self.heads], dim=-1)


class PreLNEncoderLayer(nn.Module):
    """x = x + drop(W_o(attention(ln1(x)))); x = x + drop(mlp(ln2(x))), mlp = A, ReLU,
    dropout, B."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.W_o = nn.Linear(d_model, d_model, bias=False)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(d_ff, d_model))
        self.dropout = nn.Dropout(dropout)

    def attend(self, x: Tensor) -> Tensor:
        out: Tensor = self.dropout(self.W_o(self.attention(self.ln1(x))))
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attend(x)
        out: Tensor = x + self.dropout(self.mlp(self.ln2(x)))
        return out


class PreLNEncoderLayerDropoutFirst(PreLNEncoderLayer):
    """The other reading of "dropout after the attention": before W_o."""

    def attend(self, x: Tensor) -> Tensor:
        out: Tensor = self.W_o(self.dropout(self.attention(self.ln1(x))))
        return out


def patches(x: Tensor, size: int) -> Tensor:
    """(N, C, H, W) -> (N, (H // size) * (W // size), C * size * size), row-major patches."""
    n, c = x.shape[:2]
    tiles = x.unfold(2, size, size).unfold(3, size, size)  # N, C, h, w, size, size
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(n, -1, c * size * size)


class ViT(nn.Module):
    """A small vision transformer; (N, C, H, W) -> scores (N, num_classes)."""

    def __init__(self, image_size: int = 28, patch_size: int = 7, in_channels: int = 1,
                 num_classes: int = 10, d_model: int = 64, depth: int = 6, num_heads: int = 8,
                 d_ff: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.patch_size = patch_size
        count = (image_size // patch_size) ** 2
        self.embed = nn.Linear(in_channels * patch_size * patch_size, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.position = nn.Parameter(torch.randn(1, count + 1, d_model) * 0.02)
        self.layers = nn.ModuleList(
            PreLNEncoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(patches(x, self.patch_size))
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], dim=1)
        tokens = tokens + self.position
        for layer in self.layers:
            tokens = layer(tokens)
        out: Tensor = self.head(self.norm(tokens[:, 0]))
        return out


class MLP(nn.Module):
    """784 -> 128 -> 64 -> 10 (192 hidden units) with ReLU and dropout; (N, 784) -> (N, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(x)
        return out


class CNN(nn.Module):
    """Three conv-BN-ReLU-pool blocks and a small head: 33,354 parameters;
    (N, 1, 28, 28) -> (N, 10)."""

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
                    nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 32))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 3 * 3, 64),
                                  nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.head(self.features(x))
        return out
