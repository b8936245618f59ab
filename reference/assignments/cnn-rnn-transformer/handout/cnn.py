"""Two MNIST classifiers: a CNN you design, and ManualCNN with four hand-made frozen filters.

Both take images (N, 1, 28, 28) with pixels in [0, 1] and return class scores (N, 10)
(no softmax: the grader trains them with cross-entropy). Use torch.nn layers here
(nn.Conv2d, nn.MaxPool2d, nn.ReLU, nn.Linear, nn.Dropout, ...).
"""

import torch
from torch import nn


class CNN(nn.Module):
    """Your CNN: at most 50,000 parameters. The grader trains it with Adam for a few
    epochs; it must reach the accuracy threshold on held-out digits."""

    def __init__(self):
        super().__init__()
        # TODO
        raise NotImplementedError("CNN.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("CNN.forward")


class ManualCNN(nn.Module):
    """conv: nn.Conv2d(1, 4, 3, padding=1) holding FOUR FILTERS YOU DESIGN (e.g. edge
    detectors), frozen (requires_grad False for conv.weight and conv.bias); then ReLU,
    nn.MaxPool2d(2) and fc: nn.Linear(4 * 14 * 14, 10), the only trained layer."""

    def __init__(self):
        super().__init__()
        # TODO
        raise NotImplementedError("ManualCNN.__init__")

    def forward(self, x):
        # TODO
        raise NotImplementedError("ManualCNN.forward")
