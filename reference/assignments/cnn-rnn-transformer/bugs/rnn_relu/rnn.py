"""A tanh RNN layer and a sequence classifier built on it (batch first)."""

import torch
from torch import nn


class RNNLayer(nn.Module):
    """h_t = tanh(W_xh x_t + W_hh h_{t-1}), h_0 = 0.

    W_xh: nn.Linear(input_size, hidden_size); W_hh: nn.Linear(hidden_size, hidden_size).
    forward: x (N, T, input_size) -> every hidden state (N, T, hidden_size).
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_xh = nn.Linear(input_size, hidden_size)
        self.W_hh = nn.Linear(hidden_size, hidden_size)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.hidden_size)
        states = []
        for t in range(x.shape[1]):
            h = torch.relu(self.W_xh(x[:, t]) + self.W_hh(h))
            states.append(h)
        return torch.stack(states, dim=1)


class RNN(nn.Module):
    """rnn: RNNLayer; fc: nn.Linear(hidden_size, output_size) on the last hidden state.

    forward: x (N, T, input_size) -> (N, output_size).
    """

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = RNNLayer(input_size, hidden_size)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc(self.rnn(x)[:, -1])
