"""Scaled dot-product self-attention, one head and several (d_model = d_k = d_v)."""

import math

import torch
import torch.nn as nn


class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.d_model = d_model
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.softmax = nn.Softmax(dim=-1)  # each query's row of scores sums to one

    def forward(self, x):
        q, k, v = self.W_q(x), self.W_k(x), self.W_v(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_model)
        return self.softmax(scores) @ v


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.d_model = d_model
        self.num_heads = num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)
        self.d_k = d_model // num_heads
        self.softmax = nn.Softmax(dim=-1)

    def heads(self, projected):
        """(B, T, d_model) -> (B, num_heads, T, d_k)."""
        batch, steps, _ = projected.shape
        return projected.reshape(batch, steps, self.num_heads, self.d_k).transpose(1, 2)

    def forward(self, x):
        batch, steps, _ = x.shape
        q, k, v = self.heads(self.W_q(x)), self.heads(self.W_k(x)), self.heads(self.W_v(x))
        weights = self.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.d_k))
        joined = (weights @ v).transpose(1, 2).reshape(batch, steps, self.d_model)
        return self.W_o(joined)
