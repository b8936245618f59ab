import torch
import torch.nn as nn
import numpy as np


class SelfAttention(nn.Module):
    def __init__(self, d_model):
        super(SelfAttention, self).__init__()
        self.d_model = d_model
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.softmax = nn.Softmax(dim=2)

    def forward(self, x):
        Q, K, V = self.W_q(x), self.W_k(x), self.W_v(x)
        attention = self.softmax(torch.bmm(Q, K.transpose(1, 2)) / np.sqrt(self.d_model))
        return torch.bmm(attention, V)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super(MultiHeadAttention, self).__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.d_model = d_model
        self.num_heads = num_heads
        self.W_q = nn.Linear(d_model, d_model)
        self.W_k = nn.Linear(d_model, d_model)
        self.W_v = nn.Linear(d_model, d_model)
        self.W_o = nn.Linear(d_model, d_model)
        self.d_k = d_model // num_heads
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        B, T, _ = x.shape
        q = self.W_q(x).view(B, T, self.num_heads, self.d_k).permute(0, 2, 1, 3)
        k = self.W_k(x).view(B, T, self.num_heads, self.d_k).permute(0, 2, 1, 3)
        v = self.W_v(x).view(B, T, self.num_heads, self.d_k).permute(0, 2, 1, 3)
        scores = self.softmax(q @ k.transpose(-2, -1) / self.d_k ** 0.5)
        out = (scores @ v).permute(0, 2, 1, 3).contiguous().view(B, T, self.d_model)
        return self.W_o(out)
