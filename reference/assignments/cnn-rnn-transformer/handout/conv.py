"""Conv2d two ways: explicit loops, and one matrix product over unfolded patches.

Do not use torch.nn.functional.conv2d, torch.conv2d or nn.Conv2d in this file: the point
is to write the convolution yourself (F.pad and F.unfold are fine). The autograder
rejects this file if it mentions them.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv2d(nn.Module):
    """2-D cross-correlation with square kernels.

    Parameters (register them in __init__, with exactly these names and shapes):
    weight (out_channels, in_channels, kernel_size, kernel_size) and bias (out_channels,).
    forward: x (N, in_channels, H, W) -> (N, out_channels, H_out, W_out), with
    H_out = (H + 2 * padding - kernel_size) // stride + 1 (and the same for W_out).

        y[n, o, i, j] = bias[o] + sum over c, k, l of
                        weight[o, c, k, l] * x_padded[n, c, i * stride + k, j * stride + l]
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        # TODO: create self.weight and self.bias as nn.Parameter, initialised like
        # nn.Conv2d (kaiming_uniform_(weight, a=math.sqrt(5)); bias uniform in +-1/sqrt(fan_in)).
        raise NotImplementedError("Conv2d.__init__")

    def forward(self, x):
        # TODO: loop over the output positions (i, j); each is a sum over one patch.
        raise NotImplementedError("Conv2d.forward")


class FasterConv2d(Conv2d):
    """The same layer with the same parameters, computed as one matrix product over the
    unfolded patches (F.unfold). It must be much faster than your Conv2d."""

    def forward(self, x):
        # TODO: F.unfold the input, multiply by the flattened weight, reshape, add the bias.
        raise NotImplementedError("FasterConv2d.forward")
