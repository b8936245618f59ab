"""Two MNIST classifiers: a CNN you design, and ManualCNN with four hand-made frozen filters.

Both take images (N, 1, 28, 28) with pixels in [0, 1] and return class scores (N, 10).
"""

import torch
from torch import nn


class CNN(nn.Module):
    """Conv(1->8, 3x3) ReLU MaxPool, Conv(8->16, 3x3) ReLU MaxPool, Linear(16*7*7 -> 10)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.hidden = nn.Linear(16 * 7 * 7, 128)
        self.classifier = nn.Linear(128, 10)

    def forward(self, x):
        return self.classifier(torch.relu(self.hidden(self.features(x).flatten(1))))


# Vertical edges, horizontal edges, and the two diagonals (Sobel-like).
FILTERS = [
    [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]],
    [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]],
    [[0.0, 1.0, 2.0], [-1.0, 0.0, 1.0], [-2.0, -1.0, 0.0]],
    [[2.0, 1.0, 0.0], [1.0, 0.0, -1.0], [0.0, -1.0, -2.0]],
]


class ManualCNN(nn.Module):
    """conv: 4 fixed 3x3 filters (padding 1, frozen), ReLU, MaxPool(2), fc: Linear(4*14*14 -> 10)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(FILTERS)[:, None])
            self.conv.bias.zero_()
        self.conv.weight.requires_grad_(False)
        self.conv.bias.requires_grad_(False)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))
