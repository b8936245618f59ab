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


class CNN_SimpleScanningMLP():
    def __init__(self):
        ## Your code goes here -->
        # The MLP sees 8 time steps at a time and the window moves 4 steps
        self.conv1 = Conv1D(24, 8, 8, 4)
        self.conv2 = Conv1D(8, 16, 1, 1)
        self.conv3 = Conv1D(16, 4, 1, 1)
        self.layers = [self.conv1, ReLU(), self.conv2, ReLU(), self.conv3, Flatten()]
        # <---------------------

    def __call__(self, x):
        # Do not modify this method
        return self.forward(x)

    def init_weights(self, weights):
        # Load the weights for your CNN from the MLP Weights given
        # w1, w2, w3 contain the weights for the three layers of the MLP
        # Load them appropriately into the CNN

        w1, w2, w3 = weights
        # w1 rows are indexed t * 24 + c -> (out, time, channel) -> (out, channel, time)
        self.conv1.W = w1.T.reshape(8, 8, 24).transpose(0, 2, 1)
        self.conv2.W = w2.T.reshape(16, 1, 8).transpose(0, 2, 1)
        self.conv3.W = w3.T.reshape(4, 1, 16).transpose(0, 2, 1)

    def forward(self, x):
        """
        Do not modify this method

        Argument:
            x (np.array): (batch size, in channel, in width)
        Return:
            out (np.array): (batch size, out channel , out width)
        """

        out = x
        for layer in self.layers:
            out = layer(out)
        return out


class CNN_DistributedScanningMLP():
    def __init__(self):
        ## Your code goes here -->
        # layer 1 neurons see 2 time steps, layer 2 neurons see 2 layer-1 groups,
        # layer 3 neurons see 2 layer-2 groups
        self.conv1 = Conv1D(24, 2, 2, 2)
        self.conv2 = Conv1D(2, 8, 2, 2)
        self.conv3 = Conv1D(8, 4, 2, 1)
        self.layers = [self.conv1, ReLU(), self.conv2, ReLU(), self.conv3, Flatten()]
        # <---------------------

    def __call__(self, x):
        # Do not modify this method
        return self.forward(x)

    def init_weights(self, weights):
        # Load the weights for your CNN from the MLP Weights given
        # w1, w2, w3 contain the weights for the three layers of the MLP
        # Load them appropriately into the CNN

        w1, w2, w3 = weights
        # only the shared block of each layer is needed
        self.conv1.W = w1[:48, :2].T.reshape(2, 2, 24).transpose(0, 2, 1)
        self.conv2.W = w2[:4, :8].T.reshape(8, 2, 2).transpose(0, 2, 1)
        self.conv3.W = w3[:16, :4].T.reshape(4, 2, 8).transpose(0, 2, 1)

    def forward(self, x):
        """
        Do not modify this method

        Argument:
            x (np.array): (batch size, in channel, in width)
        Return:
            out (np.array): (batch size, out channel , out width)
        """

        out = x
        for layer in self.layers:
            out = layer(out)
        return out
