"""Part 3: scaled dot-product attention.

SingleHeadAttention(d_model, d_k, dropout): x (N, T, d_model) -> softmax(Q K^T / sqrt(d_k)) V,
shape (N, T, d_k), with Q = W_q(x), K = W_k(x), V = W_v(x), each an nn.Linear(d_model, d_k,
bias=False). Only nn.Linear, nn.Softmax and nn.Dropout may be used from torch.nn.

MultiHeadAttention(d_model, num_heads, dropout) is given code (the handout: "The
implementation for multihead attention is provided to you and uses your implementation from
part (a)"): num_heads SingleHeadAttention heads of width d_model // num_heads, concatenated
along the last axis. W^O belongs to the encoder layer (transformer.py).
"""

import math

import torch
from torch import nn


class SingleHeadAttention(nn.Module):
    def __init__(self, d_model, d_k, dropout=0.0):
        super().__init__()
        self.d_k = d_k
        self.W_q = nn.Linear(d_model, d_k, bias=False)
        self.W_k = nn.Linear(d_model, d_k, bias=False)
        self.W_v = nn.Linear(d_model, d_k, bias=False)
        self.softmax = nn.Softmax(dim=-1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        q, k, v = self.W_q(x), self.W_k(x), self.W_v(x)
        weights = self.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.d_k))
        return self.dropout(weights) @ v


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
