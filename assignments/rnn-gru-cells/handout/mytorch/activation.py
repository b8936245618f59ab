"""Given code: activations with the derivative at a stored (or given) output."""

import numpy as np


class Sigmoid:
    def __call__(self, z):
        return self.forward(z)

    def forward(self, z):
        self.state = 1.0 / (1.0 + np.exp(-z))
        return self.state

    def backward(self, state=None):
        """d sigmoid / dz at the output ``state`` (default: the last forward's)."""
        s = self.state if state is None else state
        return s * (1.0 - s)


class Tanh:
    def __call__(self, z):
        return self.forward(z)

    def forward(self, z):
        self.state = np.tanh(z)
        return self.state

    def backward(self, state=None):
        """d tanh / dz at the output ``state`` (default: the last forward's)."""
        s = self.state if state is None else state
        return 1.0 - s * s
