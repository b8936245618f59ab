"""Part 1: a multi-layer perceptron for MNIST.

Constraints: at most 200 hidden units in all, built only from nn.Linear, nn.ReLU,
nn.Softmax and nn.Dropout. Input: flattened images (N, 784) in [0, 1]; output: class
scores (N, 10) (the grader's loss applies the softmax).
"""

from torch import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        # TODO: build your layers here (and only here).
        raise NotImplementedError("MLP.__init__")

    def forward(self, x):
        raise NotImplementedError("MLP.forward")
