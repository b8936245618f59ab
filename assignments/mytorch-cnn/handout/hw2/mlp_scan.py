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

# The MLP being scanned (see hw2/mlp.py) looks at 8 time steps x 24 channels;
# its input vector is the window flattened time-major (index t * 24 + c).
# Layers: Linear(192, 8) -> ReLU -> Linear(8, 16) -> ReLU -> Linear(16, 4), no biases.
# The window moves 4 time steps at a time.
# weights = [w1 (192, 8), w2 (8, 16), w3 (16, 4)]


class CNN_SimpleScanningMLP():
    def __init__(self):
        ## Your code goes here -->
        # self.conv1 = ???
        # self.conv2 = ???
        # self.conv3 = ???
        # ...
        # <---------------------
        self.conv1 = None
        self.conv2 = None
        self.conv3 = None
        self.layers = []  # [conv1, ReLU(), conv2, ReLU(), conv3, Flatten()]

    def __call__(self, x):
        # Do not modify this method
        return self.forward(x)

    def init_weights(self, weights):
        # Load the weights for your CNN from the MLP Weights given
        # w1, w2, w3 contain the weights for the three layers of the MLP
        # Load them appropriately into the CNN
        # (Conv1D.W has shape (out_channel, in_channel, kernel_size))

        w1, w2, w3 = weights
        # TODO
        self.conv1.W = None
        self.conv2.W = None
        self.conv3.W = None

    def forward(self, x):
        """
        Do not modify this method

        Argument:
            x (np.array): (batch size, in channel, in width)      here (1, 24, 128)
        Return:
            out (np.array): (batch size, out channel * out width)  here (1, 4 * 31)
        """

        out = x
        for layer in self.layers:
            out = layer(out)
        return out


class CNN_DistributedScanningMLP():
    def __init__(self):
        ## Your code goes here -->
        # self.conv1 = ???
        # self.conv2 = ???
        # self.conv3 = ???
        # ...
        # <---------------------
        self.conv1 = None
        self.conv2 = None
        self.conv3 = None
        self.layers = []  # [conv1, ReLU(), conv2, ReLU(), conv3, Flatten()]

    def __call__(self, x):
        # Do not modify this method
        return self.forward(x)

    def init_weights(self, weights):
        # Load the weights for your CNN from the MLP Weights given
        # w1, w2, w3 contain the weights for the three layers of the MLP
        # Load them appropriately into the CNN
        # (only the shared part of each MLP layer is needed)

        w1, w2, w3 = weights
        # TODO
        self.conv1.W = None
        self.conv2.W = None
        self.conv3.W = None

    def forward(self, x):
        """
        Do not modify this method

        Argument:
            x (np.array): (batch size, in channel, in width)      here (1, 24, 128)
        Return:
            out (np.array): (batch size, out channel * out width)  here (1, 4 * 31)
        """

        out = x
        for layer in self.layers:
            out = layer(out)
        return out
