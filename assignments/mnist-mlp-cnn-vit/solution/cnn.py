"""Part 2: a convolutional network for MNIST.

Constraints: fewer than 50,000 parameters, at least one Dropout and one BatchNorm layer.
Input: images (N, 1, 28, 28) in [0, 1]; output: class scores (N, 10). The grader trains it
with Adam (lr 1e-3) in batches of 32.
"""

from torch import nn


def block(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.MaxPool2d(2)]


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 32))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(32 * 3 * 3, 64), nn.ReLU(),
            nn.Linear(64, 10),
        )

    def forward(self, x):
        return self.head(self.features(x))
