"""Part 3: scaled dot-product attention.

SingleHeadAttention(d_model, d_k, dropout): x (N, T, d_model) -> softmax(Q K^T / sqrt(d_k)) V,
shape (N, T, d_k), with Q = W_q(x), K = W_k(x), V = W_v(x), each an nn.Linear(d_model, d_k,
bias=False). Only nn.Linear, nn.Softmax and nn.Dropout may be used from torch.nn.

MultiHeadAttention(d_model, num_heads, dropout) is given code: it runs num_heads of your
SingleHeadAttention heads of width d_model // num_heads and concatenates them along the last
axis. Do not modify it; W^O belongs to your encoder layer (transformer.py).
"""

import math

import torch
from torch import nn


class SingleHeadAttention(nn.Module):
    def __init__(self, d_model, d_k, dropout=0.0):
        super().__init__()
        raise NotImplementedError("SingleHeadAttention.__init__")

    def forward(self, x):
        raise NotImplementedError("SingleHeadAttention.forward")


# ---------------------------------------------------------------- given code: do not modify


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        d_k = d_model // num_heads
        self.heads = nn.ModuleList(
            [SingleHeadAttention(d_model, d_k, dropout) for _ in range(num_heads)]
        )

    def forward(self, x):
        return torch.cat([head(x) for head in self.heads], dim=-1)
