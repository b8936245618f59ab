# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

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
        """

        if weight_init_fn is None:
            self.W = np.random.normal(0, 1.0, (in_feature, out_feature))
        else:
            self.W = weight_init_fn(in_feature, out_feature)
        if bias_init_fn is None:
            self.b = np.zeros(out_feature)
        else:
            self.b = bias_init_fn(out_feature)

        self.dW = np.zeros(self.W.shape)
        self.db = np.zeros(self.b.shape)

        self.momentum_W = np.zeros(self.W.shape)
        self.momentum_b = np.zeros(self.b.shape)

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """
        Argument:
            x (np.array): (batch size, in feature)
        Return:
            out (np.array): (batch size, out feature)
        """
        self.x = x
        return x @ self.W + self.b

    def backward(self, delta):

        """
        Argument:
            delta (np.array): (batch size, out feature)
        Return:
            out (np.array): (batch size, in feature)
        """
        batch_size = delta.shape[0]
        self.dW = self.x.T @ delta / batch_size
        self.db = delta.mean(axis=0).reshape(self.b.shape)
        return delta @ self.W.T
