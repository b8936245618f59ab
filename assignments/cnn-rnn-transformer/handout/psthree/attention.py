"""Problem 3(a): self-attention, one head and several (d_model = d_k = d_v)."""

import torch
import torch.nn as nn


class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super().__init__()
        self.d_model = d_model
        # TODO: self.W_q, self.W_k, self.W_v as nn.Linear(d_model, d_model), and
        # self.softmax = nn.Softmax over the right dimension (each row of the attention
        # scores is a probability distribution)
        raise NotImplementedError("TODO: SelfAttention.__init__")

    def forward(self, x):
        """x: (B, T, d_model) -> (B, T, d_model): scaled dot-product self-attention."""
        raise NotImplementedError("TODO: SelfAttention.forward")


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_k = d_model // num_heads
        # TODO: self.W_q, self.W_k, self.W_v, self.W_o as nn.Linear(d_model, d_model), and
        # self.softmax
        raise NotImplementedError("TODO: MultiHeadAttention.__init__")

    def forward(self, x):
        """x: (B, T, d_model) -> (B, T, d_model). Project q, k, v; reshape to (B, T,
        num_heads, d_k) and transpose to (B, num_heads, T, d_k); attend per head; transpose
        back, reshape to (B, T, d_model) and apply W_o."""
        raise NotImplementedError("TODO: MultiHeadAttention.forward")
