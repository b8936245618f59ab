"""Conv2d written by hand: first with four loops, then with two loops and broadcasting.

Both keep the course's interface: ``Conv2d(in_channels, out_channels, filter_size,
padding=0, stride=1, filters=None, biases=None)`` with parameters ``filters``
(out_channels, in_channels, filter_size, filter_size) and ``biases`` (out_channels,);
``forward`` adds the biases to what ``convolution`` returns.
"""

import torch
import torch.nn as nn


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, filter_size, padding=0, stride=1,
                 filters=None, biases=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.filter_size = filter_size
        self.padding = padding
        self.stride = stride
        if filters is None:
            filters = torch.randn(out_channels, in_channels, filter_size, filter_size)
        if biases is None:
            biases = torch.randn(out_channels)
        self.filters = nn.Parameter(filters)
        self.biases = nn.Parameter(biases)

    def convolution(self, x: torch.Tensor, filters: torch.Tensor):
        """x: (B, C_in, H, W), filters: (C_out, C_in, F, F) -> (B, C_out, H_out, W_out)."""
        batch, c_in, height, width = x.shape
        c_out, size = filters.shape[0], filters.shape[2]
        p, s = self.padding, self.stride
        h_out = (height + 2 * p - size) // s + 1
        w_out = (width + 2 * p - size) // s + 1
        padded = torch.zeros(batch, c_in, height + 2 * p, width + 2 * p)
        padded[:, :, p:p + height, p:p + width] = x
        output = torch.zeros(batch, c_out, h_out, w_out)
        for out_channel in range(c_out):
            for in_channel in range(c_in):
                kernel = filters[out_channel, in_channel]
                for row in range(h_out):
                    for col in range(w_out):
                        window = padded[:, in_channel, row * s:row * s + size,
                                        col * s:col * s + size]
                        output[:, out_channel, row, col] += (window * kernel).sum(dim=(1, 2))
        return output

    def forward(self, x: torch.Tensor):
        x = self.convolution(x, self.filters)
        return x + self.biases.view(1, -1, 1, 1)


class FasterConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, filter_size, padding=0, stride=1,
                 filters=None, biases=None):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.filter_size = filter_size
        self.padding = padding
        self.stride = stride
        if filters is None:
            filters = torch.randn(out_channels, in_channels, filter_size, filter_size)
        if biases is None:
            biases = torch.randn(out_channels)
        self.filters = nn.Parameter(filters)
        self.biases = nn.Parameter(biases)

    def convolution(self, x: torch.Tensor, filters: torch.Tensor):
        """Only the output rows and columns are looped over: each window of the batch,
        (B, 1, C_in, F, F), is multiplied by every filter, (C_out, C_in, F, F), at once."""
        batch, c_in, height, width = x.shape
        c_out, size = filters.shape[0], filters.shape[2]
        p, s = self.padding, self.stride
        h_out = (height + 2 * p - size) // s + 1
        w_out = (width + 2 * p - size) // s + 1
        padded = torch.zeros(batch, c_in, height + 2 * p, width + 2 * p)
        padded[:, :, p:p + height, p:p + width] = x
        output = torch.zeros(batch, c_out, h_out, w_out)
        for row in range(h_out):
            for col in range(w_out):
                window = padded[:, :, row * s:row * s + size, col * s:col * s + size]
                output[:, :, row, col] = (window.unsqueeze(1) * filters).sum(dim=(2, 3, 4))
        return output

    def forward(self, x: torch.Tensor):
        x = self.convolution(x, self.filters)
        return x + self.biases.view(1, -1, 1, 1)
