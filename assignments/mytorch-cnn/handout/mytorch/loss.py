# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

# Copy your HW1P1 implementation here.

import numpy as np


class Criterion(object):
    """
    Interface for loss functions.
    """

    # Nothing needs done to this class, it's used by the autograder to
    # test your implementation

    def __init__(self):
        self.logits = None
        self.labels = None
        self.loss = None

    def __call__(self, x, y):
        return self.forward(x, y)

    def forward(self, x, y):
        raise NotImplementedError

    def derivative(self):
        raise NotImplementedError


class SoftmaxCrossEntropy(Criterion):
    """
    Softmax loss
    """

    def __init__(self):
        super(SoftmaxCrossEntropy, self).__init__()

    def forward(self, x, y):
        """
        Argument:
            x (np.array): (batch size, 10) logits
            y (np.array): (batch size, 10) one-hot labels
        Return:
            out (np.array): (batch size, ) per-sample loss

        Use the LogSumExp trick so large logits do not overflow.
        """
        # TODO
        raise NotImplementedError

    def derivative(self):
        """
        Return:
            out (np.array): (batch size, 10), softmax(x) - y (not averaged)
        """
        # TODO
        raise NotImplementedError
