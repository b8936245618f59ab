import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    def __init__(self, num_classes=10, input_size=28):
        super(CNN, self).__init__()
        self.conv = nn.Conv2d(in_channels=1, out_channels=4, kernel_size=3, stride=1, padding=1)
        self.fc = nn.Linear(4 * input_size * input_size, num_classes)

    def forward(self, x):
        x = self.conv(x)
        x = F.relu(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x


class ManualCNN(nn.Module):
    def __init__(self, num_classes=10, input_size=28):
        super(ManualCNN, self).__init__()
        self.conv = nn.Conv2d(1, 4, 3, 1, 1)
        self.fc = nn.Linear(4 * input_size * input_size, num_classes)
        self.conv.weight.data = torch.tensor([
            [[[1, 0, -1], [1, 0, -1], [1, 0, -1]]],    # vertical strokes
            [[[1, 1, 1], [0, 0, 0], [-1, -1, -1]]],    # horizontal strokes
            [[[1, 0, 0], [0, 1, 0], [0, 0, 1]]],       # one diagonal
            [[[0, 0, 1], [0, 1, 0], [1, 0, 0]]],       # the other
        ], dtype=torch.float32)
        self.conv.weight.requires_grad = False
        self.conv.bias.requires_grad = False

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = torch.flatten(x, 1)
        return self.fc(x)
