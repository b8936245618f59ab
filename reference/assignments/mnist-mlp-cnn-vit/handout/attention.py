"""Part 3: scaled dot-product attention.

SingleHeadAttention(d_model, d_k, dropout): x (N, T, d_model) -> softmax(Q K^T / sqrt(d_k)) V,
shape (N, T, d_k), with Q = W_q(x), K = W_k(x), V = W_v(x), each an nn.Linear(d_model, d_k,
bias=False). Only nn.Linear, nn.Softmax and nn.Dropout may be used from torch.nn.

MultiHeadAttention(d_model, num_heads, dropout): num_heads SingleHeadAttention heads of width
d_model // num_heads in an nn.ModuleList called heads, concatenated along the last axis, then
W_o = nn.Linear(d_model, d_model, bias=False).
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


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dropout=0.0):
        super().__init__()
        raise NotImplementedError("MultiHeadAttention.__init__")

    def forward(self, x):
        raise NotImplementedError("MultiHeadAttention.forward")
