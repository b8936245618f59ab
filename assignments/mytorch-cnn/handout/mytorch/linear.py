# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

# Copy your HW1P1 implementation here.

import numpy as np


class Linear():
    def __init__(self, in_feature, out_feature, weight_init_fn=None, bias_init_fn=None):

        """
        Argument:
            W (np.array): (in feature, out feature)
            dW (np.array): (in feature, out feature)
            momentum_W (np.array): (in feature, out feature)

            b (np.array): (1, out feature)
            db (np.array): (1, out feature)
            momentum_B (np.array): (1, out feature)

        W = weight_init_fn(in_feature, out_feature), b = bias_init_fn(out_feature)
        (when an init function is None: W ~ N(0, 1), b = 0)
        """

        # TODO
        self.W = None
        self.b = None
        self.dW = None
        self.db = None

        self.momentum_W = None
        self.momentum_b = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """
        Argument:
            x (np.array): (batch size, in feature)
        Return:
            out (np.array): (batch size, out feature)
        """
        # TODO
        raise NotImplementedError

    def backward(self, delta):

        """
        Argument:
            delta (np.array): (batch size, out feature)
        Return:
            out (np.array): (batch size, in feature)

        Store self.dW and self.db AVERAGED over the batch (HW1P1 convention).
        """
        # TODO
        raise NotImplementedError
