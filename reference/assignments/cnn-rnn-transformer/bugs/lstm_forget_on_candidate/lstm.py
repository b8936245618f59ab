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
    """

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.W_f = nn.Linear(hidden_size + input_size, hidden_size)
        self.W_i = nn.Linear(hidden_size + input_size, hidden_size)
        self.W_c = nn.Linear(hidden_size + input_size, hidden_size)
        self.W_o = nn.Linear(hidden_size + input_size, hidden_size)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.hidden_size)
        c = x.new_zeros(x.shape[0], self.hidden_size)
        states = []
        for t in range(x.shape[1]):
            z = torch.cat([h, x[:, t]], dim=1)
            f = torch.sigmoid(self.W_f(z))
            i = torch.sigmoid(self.W_i(z))
            candidate = torch.tanh(self.W_c(z))
            o = torch.sigmoid(self.W_o(z))
            c = i * c + f * candidate
            h = o * torch.tanh(c)
            states.append(h)
        return torch.stack(states, dim=1)


class LSTM(nn.Module):
    """lstm: LSTMLayer; fc: nn.Linear(hidden_size, output_size) on the last hidden state.

    forward: x (N, T, input_size) -> (N, output_size).
    """

    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.lstm = LSTMLayer(input_size, hidden_size)
        self.fc = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc(self.lstm(x)[:, -1])
