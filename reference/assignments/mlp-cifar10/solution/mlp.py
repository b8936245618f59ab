"""CS 480 A2, part 2: a one-hidden-layer MLP for CIFAR-10 in PyTorch, and its accuracy."""

import torch
from torch import nn


class MLPinPyTorch(nn.Module):
    """x (N, 3072) (or (N, 3, 32, 32), flattened) -> class probabilities (N, 10).

    Parameters: W1 (3072, 256), b1 (256,), W2 (256, 10), b2 (10,).
    hidden = sigmoid(x W1 + b1); output = softmax(hidden W2 + b2) over the classes.
    """

    def __init__(self):
        super().__init__()
        self.W1 = nn.Parameter(torch.randn(3072, 256) * 0.01)
        self.b1 = nn.Parameter(torch.zeros(256))
        self.W2 = nn.Parameter(torch.randn(256, 10) * 0.01)
        self.b2 = nn.Parameter(torch.zeros(10))

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        hidden = torch.sigmoid(x @ self.W1 + self.b1)
        return torch.softmax(hidden @ self.W2 + self.b2, dim=1)


def accuracy(y, predicted):
    """y (N, 10) one-hot labels, predicted (N, 10) probabilities -> fraction correct (float)."""
    return (predicted.argmax(dim=1) == y.argmax(dim=1)).float().mean().item()
