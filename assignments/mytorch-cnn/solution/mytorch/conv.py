# Do not import any additional 3rd party external libraries as they will not
# be available to AutoLab and are not needed (or allowed)

import numpy as np


class Conv1D():
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
        """
        Argument:
            x (np.array): (batch_size, in_channel, input_size)
        Return:
            out (np.array): (batch_size, out_channel, output_size)
        """
        self.x = x
        batch_size, in_channel, input_size = x.shape
        output_size = (input_size - self.kernel_size) // self.stride + 1

        out = np.zeros((batch_size, self.out_channel, output_size))
        for t in range(output_size):
            start = t * self.stride
            segment = x[:, :, start:start + self.kernel_size]  # (batch, in_channel, kernel_size)
            # sum over in_channel and kernel position -> (batch, out_channel)
            out[:, :, t] = np.tensordot(segment, self.W, axes=([1, 2], [1, 2]))
        out += self.b.reshape(1, -1, 1)
        return out

    def backward(self, delta):
        """
        Argument:
            delta (np.array): (batch_size, out_channel, output_size)
        Return:
            dx (np.array): (batch_size, in_channel, input_size)
        """
        batch_size, out_channel, output_size = delta.shape

        dx = np.zeros(self.x.shape)
        dW = np.zeros(self.W.shape)
        for t in range(output_size):
            start = t * self.stride
            segment = self.x[:, :, start:start + self.kernel_size]  # (batch, in_channel, kernel_size)
            # (batch, out_channel) x (batch, in_channel, kernel_size) -> (out_channel, in_channel, kernel_size)
            dW += np.tensordot(delta[:, :, t], segment, axes=([0], [0]))
            # (batch, out_channel) x (out_channel, in_channel, kernel_size) -> (batch, in_channel, kernel_size)
            dx[:, :, start:start + self.kernel_size] += np.tensordot(delta[:, :, t], self.W, axes=([1], [0]))

        self.dW = dW
        self.db = delta.sum(axis=(0, 2))
        return dx


class Conv2D():
    def __init__(self, in_channel, out_channel,
                 kernel_size, stride,
                 weight_init_fn=None, bias_init_fn=None):

        # Do not modify this method
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.kernel_size = kernel_size
        self.stride = stride

        if weight_init_fn is None:
            self.W = np.random.normal(0, 1.0, (out_channel, in_channel, kernel_size, kernel_size))
        else:
            self.W = weight_init_fn(out_channel, in_channel, kernel_size, kernel_size)

        if bias_init_fn is None:
            self.b = np.zeros(out_channel)
        else:
            self.b = bias_init_fn(out_channel)

        self.dW = np.zeros(self.W.shape)
        self.db = np.zeros(self.b.shape)

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """
        Argument:
            x (np.array): (batch_size, in_channel, input_width, input_height)
        Return:
            out (np.array): (batch_size, out_channel, output_width, output_height)
        """
        batch_size, _, width, height = x.shape
        k, s = self.kernel_size, self.stride
        self.input = x
        y = np.zeros((batch_size, self.out_channel, (width - k) // s + 1, (height - k) // s + 1))
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                patch = x[:, :, i * s:i * s + k, j * s:j * s + k]  # (batch, in, k, k)
                y[:, :, i, j] = np.tensordot(patch, self.W, axes=([1, 2, 3], [1, 2, 3]))
        return y + self.b.reshape(1, -1, 1, 1)

    def backward(self, delta):
        """
        Argument:
            delta (np.array): (batch_size, out_channel, output_width, output_height)
        Return:
            dx (np.array): (batch_size, in_channel, input_width, input_height)
        """
        k, s = self.kernel_size, self.stride
        grad_x = np.zeros(self.input.shape)
        dW = np.zeros(self.W.shape)
        for i in range(delta.shape[2]):
            for j in range(delta.shape[3]):
                patch = self.input[:, :, i * s:i * s + k, j * s:j * s + k]
                # (batch, out) x (batch, in, k, k) -> (out, in, k, k)
                dW += np.tensordot(delta[:, :, i, j], patch, axes=([0], [0]))
                # (batch, out) x (out, in, k, k) -> (batch, in, k, k)
                grad_x[:, :, i * s:i * s + k, j * s:j * s + k] += np.tensordot(
                    delta[:, :, i, j], self.W, axes=([1], [0]))

        self.dW = dW
        self.db = delta.sum(axis=(0, 2, 3))
        return grad_x


class Flatten():
    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        """
        Argument:
            x (np.array): (batch_size, in_channel, in_width)
        Return:
            out (np.array): (batch_size, in_channel * in width)
        """
        self.b, self.c, self.w = x.shape
        return x.reshape(self.b, self.c * self.w)

    def backward(self, delta):
        """
        Argument:
            delta (np.array): (batch size, in channel * in width)
        Return:
            dx (np.array): (batch size, in channel, in width)
        """
        return delta.reshape(self.b, self.c, self.w)
