"""Scaled dot-product self-attention: one head, and several heads."""

import math

import torch
from torch import nn


class SelfAttention(nn.Module):
    """query, key, value: nn.Linear(embed_dim, embed_dim).

    forward: x (N, T, embed_dim) -> softmax(Q K^T / sqrt(embed_dim)) V, (N, T, embed_dim).
    """

    def __init__(self, embed_dim):
        super().__init__()
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)

    def forward(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        return torch.softmax(scores, dim=-1) @ v


class MultiHeadAttention(nn.Module):
    """query, key, value, out: nn.Linear(embed_dim, embed_dim); d_k = embed_dim // num_heads.

    Head h attends with columns h*d_k:(h+1)*d_k of Q, K and V; the heads are concatenated
    and projected by out. forward: x (N, T, embed_dim) -> (N, T, embed_dim).
    """

    def __init__(self, embed_dim, num_heads):
        super().__init__()
        assert embed_dim % num_heads == 0
        self.num_heads, self.d_k = num_heads, embed_dim // num_heads
        self.query = nn.Linear(embed_dim, embed_dim)
        self.key = nn.Linear(embed_dim, embed_dim)
        self.value = nn.Linear(embed_dim, embed_dim)
        self.out = nn.Linear(embed_dim, embed_dim)

    def split(self, x):
        n, t, _ = x.shape
        return x.reshape(n, t, self.num_heads, self.d_k).transpose(1, 2)  # (N, heads, T, d_k)

    def forward(self, x):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        weights = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        heads = (weights @ v).transpose(1, 2).reshape(x.shape)
        return self.out(heads)
