"""An Elman RNN layer from the handout's equations, and the sentiment model built on it.

RNNLayer(input_size, hidden_size, output_size): weights are stored (n_in, n_out) and
applied on the right, x_t @ W_xh; forward maps x (B, T, input_size) to the output of
every step, (B, T, output_size).
"""

import math

import torch
import torch.nn as nn


def xavier(n_in, n_out):
    """Normal with mean 0 and variance 2 / (n_in + n_out), as an (n_in, n_out) parameter."""
    return nn.Parameter(torch.randn(n_in, n_out) * math.sqrt(2 / (n_in + n_out)))


class RNNLayer(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_xh = xavier(input_size, hidden_size)
        self.W_hh = xavier(hidden_size, hidden_size)
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_hy = xavier(hidden_size, output_size)
        self.b_y = nn.Parameter(torch.zeros(output_size))
        self.tanh = nn.Tanh()

    def forward(self, x):
        batch, steps = x.shape[0], x.shape[1]
        hidden = torch.zeros(batch, self.hidden_size)
        outputs = []
        for t in range(steps):
            hidden = self.tanh(hidden @ self.W_hh + x[:, t] @ self.W_xh + self.b_h)
            outputs.append(hidden @ self.W_hy + self.b_y)
        return torch.stack(outputs, dim=1)

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            return torch.argmax(self.forward(x), dim=-1)


class RNN(nn.Module):
    def __init__(self, tokenizer, embedding_size, hidden_size, output_size):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        self.rnn_layer = RNNLayer(embedding_size, hidden_size, output_size)

    def forward(self, x):
        return self.rnn_layer(self.embedding(x))
