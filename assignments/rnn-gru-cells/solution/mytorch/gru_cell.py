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
        self.x, self.hidden = x, h_prev_t
        self.r = self.r_act(self.Wrx @ x + self.brx + self.Wrh @ h_prev_t + self.brh)
        self.z = self.z_act(self.Wzx @ x + self.bzx + self.Wzh @ h_prev_t + self.bzh)
        self.n_hidden = self.Wnh @ h_prev_t + self.bnh
        self.n = self.h_act(self.Wnx @ x + self.bnx + self.r * self.n_hidden)
        h_t = (1 - self.z) * self.n + self.z * h_prev_t
        return h_t

    def backward(self, delta):
        """delta: dL/dh_t, (hidden_size,). Adds to every dW* and db* and returns
        (dx (input_size,), dh_prev_t (hidden_size,))."""
        x, h = self.x, self.hidden
        dn = delta * (1 - self.z)
        dz = delta * (h - self.n)
        dh_prev_t = delta * self.z
        dn_pre = dn * self.h_act.backward(state=self.n)
        dr = dn_pre * self.n_hidden
        dz_pre = dz * self.z_act.backward(state=self.z)
        dr_pre = dr * self.r_act.backward(state=self.r)
        dn_hidden = dn_pre * self.r
        self.dWnx += np.outer(dn_pre, x)
        self.dbnx += dn_pre
        self.dWnh += np.outer(dn_hidden, h)
        self.dbnh += dn_hidden
        self.dWzx += np.outer(dz_pre, x)
        self.dbzx += dz_pre
        self.dWzh += np.outer(dz_pre, h)
        self.dbzh += dz_pre
        self.dWrx += np.outer(dr_pre, x)
        self.dbrx += dr_pre
        self.dWrh += np.outer(dr_pre, h)
        self.dbrh += dr_pre
        dx = self.Wnx.T @ dn_pre + self.Wzx.T @ dz_pre + self.Wrx.T @ dr_pre
        dh_prev_t += self.Wnh.T @ dn_hidden + self.Wzh.T @ dz_pre + self.Wrh.T @ dr_pre
        return dx, dh_prev_t
