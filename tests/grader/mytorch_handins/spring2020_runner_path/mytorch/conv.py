# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

import numpy as np


class Conv1D:
    def __init__(self, in_channel, out_channel, kernel_size, stride,
                 weight_init_fn=None, bias_init_fn=None):
        # Do not modify this method
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.kernel_size = kernel_size
        self.stride = stride

        if weight_init_fn is None:
            self.W = np.random.normal(0, 1.0, (out_channel, in_channel, kernel_size))
        else:
            self.W = weight_init_fn(out_channel, in_channel, kernel_size)

        if bias_init_fn is None:
            self.b = np.zeros(out_channel)
        else:
            self.b = bias_init_fn(out_channel)

        self.dW = np.zeros(self.W.shape)
        self.db = np.zeros(self.b.shape)

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        self.x = x
        batch, _, width = x.shape
        out_size = (width - self.kernel_size) // self.stride + 1
        out = np.zeros((batch, self.out_channel, out_size))
        for n in range(batch):
            for o in range(self.out_channel):
                for t in range(out_size):
                    start = t * self.stride
                    out[n, o, t] = np.sum(x[n, :, start:start + self.kernel_size] * self.W[o]) + self.b[o]
        return out

    def backward(self, delta):
        batch, _, out_size = delta.shape
        dx = np.zeros(self.x.shape)
        for n in range(batch):
            for o in range(self.out_channel):
                for t in range(out_size):
                    start = t * self.stride
                    dx[n, :, start:start + self.kernel_size] += delta[n, o, t] * self.W[o]
                    self.dW[o] += delta[n, o, t] * self.x[n, :, start:start + self.kernel_size]
        self.db = np.sum(delta, axis=(0, 2))
        return dx


class Flatten:
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, delta):
        return delta.reshape(self.shape)
