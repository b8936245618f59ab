import numpy as np
from activation import Sigmoid, Tanh


class GRUCell:
    """A GRU cell on one example (PyTorch's equations):

    r = sigmoid(Wrx x + brx + Wrh h + brh)
    z = sigmoid(Wzx x + bzx + Wzh h + bzh)
    n = tanh(Wnx x + bnx + r * (Wnh h + bnh))
    h_t = (1 - z) * n + z * h
    """

    def __init__(self, input_size, hidden_size):
        self.d, self.h = input_size, hidden_size
        h, d = hidden_size, input_size
        self.Wrx, self.Wzx, self.Wnx = (np.random.randn(h, d) for _ in range(3))
        self.Wrh, self.Wzh, self.Wnh = (np.random.randn(h, h) for _ in range(3))
        self.brx, self.bzx, self.bnx = (np.random.randn(h) for _ in range(3))
        self.brh, self.bzh, self.bnh = (np.random.randn(h) for _ in range(3))
        self.zero_grad()
        self.r_act, self.z_act, self.h_act = Sigmoid(), Sigmoid(), Tanh()

    def init_weights(self, Wrx, Wzx, Wnx, Wrh, Wzh, Wnh, brx, bzx, bnx, brh, bzh, bnh):
        self.Wrx, self.Wzx, self.Wnx = Wrx, Wzx, Wnx
        self.Wrh, self.Wzh, self.Wnh = Wrh, Wzh, Wnh
        self.brx, self.bzx, self.bnx = brx, bzx, bnx
        self.brh, self.bzh, self.bnh = brh, bzh, bnh

    def zero_grad(self):
        h, d = self.h, self.d
        self.dWrx, self.dWzx, self.dWnx = (np.zeros((h, d)) for _ in range(3))
        self.dWrh, self.dWzh, self.dWnh = (np.zeros((h, h)) for _ in range(3))
        self.dbrx, self.dbzx, self.dbnx = (np.zeros(h) for _ in range(3))
        self.dbrh, self.dbzh, self.dbnh = (np.zeros(h) for _ in range(3))

    def __call__(self, x, h_prev_t):
        return self.forward(x, h_prev_t)

    def forward(self, x, h_prev_t):
        """x: (input_size,), h_prev_t: (hidden_size,) -> h_t (hidden_size,). Keep what
        backward needs."""
        # TODO
        raise NotImplementedError

    def backward(self, delta):
        """delta: dL/dh_t, (hidden_size,). Adds to every dW* and db* and returns
        (dx (input_size,), dh_prev_t (hidden_size,))."""
        # TODO
        raise NotImplementedError
