"""Problem 1(b) and 1(c): a CNN for MNIST, and ManualCNN with four filters you choose."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    def __init__(self, num_classes=10, input_size=28):
        super().__init__()
        # TODO: self.conv = nn.Conv2d with 4 filters of size 3, padding 1, stride 1 (the
        # images are grayscale); self.fc = nn.Linear from the flattened features to classes
        raise NotImplementedError("TODO: CNN.__init__")

    def forward(self, x):
        # TODO: conv, F.relu, torch.flatten (keep the batch axis), fc
        raise NotImplementedError("TODO: CNN.forward")


class ManualCNN(nn.Module):
    def __init__(self, num_classes=10, input_size=28):
        super().__init__()
        # TODO: initialise the layers as in CNN, then set the 4 filters by hand:
        # self.conv.weight.data = torch.tensor([...], dtype=torch.float32)  # (4, 1, 3, 3)
        # and keep them fixed during training:
        # self.conv.weight.requires_grad = False
        # self.conv.bias.requires_grad = False
        raise NotImplementedError("TODO: ManualCNN.__init__")

    def forward(self, x):
        # TODO: as in CNN
        raise NotImplementedError("TODO: ManualCNN.forward")
