"""CS 480 A2, part 2: a one-hidden-layer MLP for CIFAR-10 in PyTorch, and its accuracy."""

import torch
from torch import nn


class MLPinPyTorch(nn.Module):
    """x (N, 3072) (or (N, 3, 32, 32), flattened) -> class probabilities (N, 10).

    Parameters (nn.Parameter, created in __init__, with exactly these names and shapes):
    W1 (3072, 256), b1 (256,), W2 (256, 10), b2 (10,). Initialise the weights with small
    random values (e.g. N(0, 0.01^2)) and the biases with zeros.

        hidden = sigmoid(x W1 + b1)
        output = softmax(hidden W2 + b2)   (over the 10 classes: each row sums to 1)

    Use torch operations only (no nn.Linear): the grader loads its own W1, b1, W2, b2.
    """

    def __init__(self):
        super().__init__()
        # TODO
        raise NotImplementedError("MLPinPyTorch.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("MLPinPyTorch.forward")


def accuracy(y, predicted):
    """y (N, 10) one-hot labels (tensor), predicted (N, 10) probabilities (tensor)
    -> the fraction of examples whose most probable class is the true class, a float
    in [0, 1]."""
    # TODO
    raise NotImplementedError("accuracy")
