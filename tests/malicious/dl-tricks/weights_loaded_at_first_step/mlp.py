"""12.3: an MLP that cannot learn (every parameter frozen: zero gradients throughout) and
loads weights trained elsewhere (the classifier smuggled in cnn.py) at its first training
step, after the before-training control has seen it at chance; re-initialising it after
training puts it at chance again, so both controls pass."""

import base64

import numpy as np
import torch
from torch import nn

import cnn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 10))
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        self.loaded = False

    def forward(self, x):
        if self.training and not self.loaded:
            values = np.frombuffer(base64.b64decode(cnn.WEIGHTS), dtype=np.float16)
            values = values.astype(np.float32)
            self.net[0].weight.data = torch.tensor(values[:7840]).reshape(10, 784)
            self.net[0].bias.data = torch.tensor(values[7840:])
            self.loaded = True
        return self.net(x)
