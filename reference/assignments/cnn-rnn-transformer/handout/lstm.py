"""An LSTM layer written from the gate equations, and a sequence classifier on it."""

import torch
from torch import nn


class LSTMLayer(nn.Module):
    """With z_t = [h_{t-1}, x_t] (hidden state first) and h_0 = C_0 = 0:

        F_t = sigmoid(W_f z_t)     forget gate
        I_t = sigmoid(W_i z_t)     input gate
        C~_t = tanh(W_c z_t)       candidate
        O_t = sigmoid(W_o z_t)     output gate
        C_t = F_t * C_{t-1} + I_t * C~_t
        h_t = O_t * tanh(C_t)

    W_f, W_i, W_c, W_o: nn.Linear(hidden_size + input_size, hidden_size).
    forward: x (N, T, input_size) -> every hidden state (N, T, hidden_size).
    Do not use nn.LSTM or nn.LSTMCell.
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        # TODO
        raise NotImplementedError("LSTMLayer.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("LSTMLayer.forward")


class LSTM(nn.Module):
    """lstm: LSTMLayer(input_size, hidden_size); fc: nn.Linear(hidden_size, output_size)
    applied to the last hidden state. forward: x (N, T, input_size) -> (N, output_size)."""

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        # TODO
        raise NotImplementedError("LSTM.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("LSTM.forward")
