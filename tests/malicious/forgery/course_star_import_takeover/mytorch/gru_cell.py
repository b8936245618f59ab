"""Corpus case: no GRU at all (see rnn_cell.py)."""
import numpy


class GRUCell:
    def __init__(self, input_size, hidden_size):
        pass

    def init_weights(self, *weights):
        pass

    def __call__(self, x, h_prev_t):
        return self.forward(x, h_prev_t)

    def forward(self, x, h_prev_t):
        return numpy.zeros_like(h_prev_t)

    def backward(self, delta):
        return [numpy.zeros((2, 2)), numpy.zeros((2, 2))]

    def __getattr__(self, name):  # dWrx, dWzx, ...
        return numpy.zeros((2, 2))
