import numpy as np
from activation import Tanh


class RNNCell:
    """An Elman RNN cell: h_t = tanh(x W_ih^T + b_ih + h_prev_t W_hh^T + b_hh)."""

    def __init__(self, input_size, hidden_size):
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.activation = Tanh()
        h, d = hidden_size, input_size
        self.W_ih = np.random.randn(h, d)
        self.W_hh = np.random.randn(h, h)
        self.b_ih = np.random.randn(h)
        self.b_hh = np.random.randn(h)
        self.zero_grad()

    def init_weights(self, W_ih, W_hh, b_ih, b_hh):
        self.W_ih, self.W_hh, self.b_ih, self.b_hh = W_ih, W_hh, b_ih, b_hh

    def zero_grad(self):
        h, d = self.hidden_size, self.input_size
        self.dW_ih = np.zeros((h, d))
        self.dW_hh = np.zeros((h, h))
        self.db_ih = np.zeros(h)
        self.db_hh = np.zeros(h)

    def __call__(self, x, h_prev_t):
        return self.forward(x, h_prev_t)

    def forward(self, x, h_prev_t):
        """x: (batch, input_size), h_prev_t: (batch, hidden_size) -> h_t (batch, hidden_size)."""
        # TODO
        raise NotImplementedError

    def backward(self, delta, h_t, h_prev_l, h_prev_t):
        """One step back. delta, h_t, h_prev_t: (batch, hidden_size); h_prev_l: the input
        x of this step, (batch, input_size). Adds the batch-averaged gradients to dW_ih,
        dW_hh, db_ih, db_hh and returns (dx (batch, input_size), dh_prev_t (batch, hidden))."""
        # TODO
        raise NotImplementedError
