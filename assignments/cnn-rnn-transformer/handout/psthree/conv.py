"""Problem 1(a): a convolution written from scratch, twice.

Do not call PyTorch's own convolution here (F.conv2d, torch.conv2d, nn.Conv2d, ...):
the autograder gives Conv2d / FasterConv2d no points if a class reaches one.
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
        self.filters = nn.Parameter(
            filters if filters is not None
            else torch.randn(out_channels, in_channels, filter_size, filter_size))
        self.biases = nn.Parameter(biases if biases is not None else torch.randn(out_channels))

    # TODO: complete this function
    def convolution(self, x: torch.Tensor, filters: torch.Tensor):
        """2D convolution (cross-correlation) of filters over x.

        x: [batch_size, in_channels, height, width]
        filters: [out_channels, in_channels, filter_size, filter_size]
        returns: [batch_size, out_channels, H_out, W_out]

        Pad x with `padding` zeros on every side, step by `stride`, and compute
        H_out / W_out for even and odd sizes alike. Hint: you will have 4 nested loops.
        """
        raise NotImplementedError("TODO: Conv2d.convolution")

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
        self.filters = nn.Parameter(
            filters if filters is not None
            else torch.randn(out_channels, in_channels, filter_size, filter_size))
        self.biases = nn.Parameter(biases if biases is not None else torch.randn(out_channels))

    # TODO: complete this function
    def convolution(self, x: torch.Tensor, filters: torch.Tensor):
        """The same convolution, faster: loop over H_out and W_out only, and multiply each
        window of the whole batch by every filter at once with broadcasting. It must be at
        least 2x faster than your Conv2d (benchmark_conv2d.py's layer, a batch of 16)."""
        raise NotImplementedError("TODO: FasterConv2d.convolution")

    def forward(self, x: torch.Tensor):
        x = self.convolution(x, self.filters)
        return x + self.biases.view(1, -1, 1, 1)
