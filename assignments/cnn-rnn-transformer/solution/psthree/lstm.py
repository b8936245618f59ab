"""An LSTM layer from the handout's gate equations, and the sentiment model built on it.

LSTMLayer(input_size, hidden_size, output_size): each gate has an input weight W_x?
(input_size, hidden_size), a recurrent weight W_h? (hidden_size, hidden_size) and a bias
b_?; forward maps x (B, T, input_size) to the output of every step, (B, T, output_size).
"""

import math

import torch
import torch.nn as nn


def xavier(n_in, n_out):
    return nn.Parameter(torch.randn(n_in, n_out) * math.sqrt(2 / (n_in + n_out)))


class LSTMLayer(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        # input, forget, output gates and the candidate memory
        self.W_xi, self.W_hi = xavier(input_size, hidden_size), xavier(hidden_size, hidden_size)
        self.b_i = nn.Parameter(torch.zeros(hidden_size))
        self.W_xf, self.W_hf = xavier(input_size, hidden_size), xavier(hidden_size, hidden_size)
        self.b_f = nn.Parameter(torch.zeros(hidden_size))
        self.W_xo, self.W_ho = xavier(input_size, hidden_size), xavier(hidden_size, hidden_size)
        self.b_o = nn.Parameter(torch.zeros(hidden_size))
        self.W_xc, self.W_hc = xavier(input_size, hidden_size), xavier(hidden_size, hidden_size)
        self.b_c = nn.Parameter(torch.zeros(hidden_size))
        self.W_hy = xavier(hidden_size, output_size)
        self.b_y = nn.Parameter(torch.zeros(output_size))
        self.sigmoid = nn.Sigmoid()
        self.tanh = nn.Tanh()

    def gate(self, x_t, h_t, w_x, w_h, b, activation):
        return activation(x_t @ w_x + h_t @ w_h + b)

    def forward(self, x):
        batch, steps = x.shape[0], x.shape[1]
        h_t = torch.zeros(batch, self.hidden_size)
        c_t = torch.zeros(batch, self.hidden_size)
        outputs = []
        for t in range(steps):
            x_t = x[:, t]
            forget = self.gate(x_t, h_t, self.W_xf, self.W_hf, self.b_f, self.sigmoid)
            remember = self.gate(x_t, h_t, self.W_xi, self.W_hi, self.b_i, self.sigmoid)
            candidate = self.gate(x_t, h_t, self.W_xc, self.W_hc, self.b_c, self.tanh)
            show = self.gate(x_t, h_t, self.W_xo, self.W_ho, self.b_o, self.sigmoid)
            c_t = forget * c_t + remember * candidate
            h_t = show * self.tanh(c_t)
            outputs.append(h_t @ self.W_hy + self.b_y)
        return torch.stack(outputs, dim=1)

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            return torch.argmax(self.forward(x), dim=-1)


class LSTM(nn.Module):
    def __init__(self, tokenizer, embedding_size, hidden_size, output_size):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        self.lstm_layer = LSTMLayer(embedding_size, hidden_size, output_size)

    def forward(self, x):
        return self.lstm_layer(self.embedding(x))
