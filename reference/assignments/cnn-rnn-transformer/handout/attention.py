"""Scaled dot-product self-attention: one head, and several heads.

Do not use nn.MultiheadAttention or F.scaled_dot_product_attention.
"""

import math

import torch
from torch import nn


class SelfAttention(nn.Module):
    """query, key, value: nn.Linear(embed_dim, embed_dim).

    forward: x (N, T, embed_dim) -> softmax(Q K^T / sqrt(embed_dim)) V, (N, T, embed_dim),
    the softmax taken over the keys.
    """

    def __init__(self, embed_dim):
        super().__init__()
        # TODO
        raise NotImplementedError("SelfAttention.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("SelfAttention.forward")


class MultiHeadAttention(nn.Module):
    """query, key, value, out: nn.Linear(embed_dim, embed_dim); d_k = embed_dim // num_heads.

    Head h attends with columns h*d_k:(h+1)*d_k of Q, K and V, scaled by 1/sqrt(d_k); the
    heads are concatenated (in order) and projected by out.
    forward: x (N, T, embed_dim) -> (N, T, embed_dim).
    """

    def __init__(self, embed_dim, num_heads):
        super().__init__()
        # TODO
        raise NotImplementedError("MultiHeadAttention.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("MultiHeadAttention.forward")
