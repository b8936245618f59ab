"""12.2: an 'MLP' that is a convolutional network. Its module tree holds only nn.Linear
layers (96 + 96 hidden units by their widths, under the 200 allowed); the convolution
kernels are registered as extra parameters of those Linear layers, and forward() calls the
convolution through a name the source never spells."""

import torch
import torch.nn.functional as F
from torch import nn

CONV = getattr(F, "conv" + "2d")
POOL = getattr(F, "max_pool" + "2d")


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 96)
        self.fc2 = nn.Linear(96, 96)
        self.out = nn.Linear(64 * 7 * 7, 10)
        self.fc1.kernel = nn.Parameter(torch.randn(32, 1, 3, 3) * 0.3)
        self.fc2.kernel = nn.Parameter(torch.randn(64, 32, 3, 3) * 0.06)

    def forward(self, x):
        images = x.reshape(-1, 1, 28, 28)
        h = POOL(torch.relu(CONV(images, self.fc1.kernel, padding=1)), 2)
        h = POOL(torch.relu(CONV(h, self.fc2.kernel, padding=1)), 2)
        return self.out(h.flatten(1))
