"""Two MNIST classifiers: a small CNN, and ManualCNN whose four filters are set by hand."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    def __init__(self, num_classes=10, input_size=28):
        super().__init__()
        # 4 filters of size 3, padding 1, stride 1, on grayscale images
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1, stride=1)
        self.fc = nn.Linear(4 * input_size * input_size, num_classes)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = torch.flatten(x, start_dim=1)
        return self.fc(x)


class ManualCNN(nn.Module):
    def __init__(self, num_classes=10, input_size=28):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1, stride=1)
        self.fc = nn.Linear(4 * input_size * input_size, num_classes)

        # Sobel edges (vertical, horizontal), a Laplacian and a blur: strokes and blobs.
        self.conv.weight.data = torch.tensor([
            [[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]],
            [[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]],
            [[[0, 1, 0], [1, -4, 1], [0, 1, 0]]],
            [[[1, 2, 1], [2, 4, 2], [1, 2, 1]]],
        ], dtype=torch.float32) / 4
        self.conv.bias.data = torch.zeros(4)

        self.conv.weight.requires_grad = False
        self.conv.bias.requires_grad = False

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = torch.flatten(x, start_dim=1)
        return self.fc(x)
