# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

import numpy as np
import os
import sys

sys.path.append('mytorch')
from loss import *
from activation import *
from linear import *
from conv import *


class MLP():
    """
    The MLP that the scanning CNNs in mlp_scan.py reproduce.

    It looks at 8 time steps of a 24-channel input at once. The input vector is
    the 8 x 24 window flattened time-major: index t * 24 + c.
    """

    def __init__(self):
        self.layers = [Linear(8 * 24, 8), ReLU(), Linear(8, 16), ReLU(), Linear(16, 4)]

    def __call__(self, x):
        return self.forward(x)

    def init_weights(self, weights):
        # weights = [w1 (192, 8), w2 (8, 16), w3 (16, 4)]; no biases
        for i in range(len(weights)):
            self.layers[i * 2].W = weights[i]
            self.layers[i * 2].b = np.zeros(weights[i].shape[1])

    def forward(self, x):
        """
        Argument:
            x (np.array): (batch size, 8 * 24)
        Return:
            out (np.array): (batch size, 4)
        """
        out = x
        for layer in self.layers:
            out = layer(out)
        return out
