"""A tanh RNN layer and a sequence classifier built on it (batch first)."""

import torch
from torch import nn


class RNNLayer(nn.Module):
    """h_t = tanh(W_xh x_t + W_hh h_{t-1}), h_0 = 0.

    W_xh: nn.Linear(input_size, hidden_size); W_hh: nn.Linear(hidden_size, hidden_size).
    forward: x (N, T, input_size) -> every hidden state (N, T, hidden_size).
    Do not use nn.RNN.
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        # TODO
        raise NotImplementedError("RNNLayer.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("RNNLayer.forward")


class RNN(nn.Module):
    """rnn: RNNLayer(input_size, hidden_size); fc: nn.Linear(hidden_size, output_size)
    applied to the last hidden state. forward: x (N, T, input_size) -> (N, output_size)."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        # TODO
        raise NotImplementedError("RNN.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("RNN.forward")
