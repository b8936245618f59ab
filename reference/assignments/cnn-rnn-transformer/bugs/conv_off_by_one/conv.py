"""Conv2d two ways: explicit loops, and one matrix product over unfolded patches.

No torch.nn.functional.conv2d, torch.conv2d or nn.Conv2d here: the point is to write
the convolution yourself (F.pad and F.unfold are fine).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class Conv2d(nn.Module):
    """2-D cross-correlation with square kernels.

    Parameters: weight (out_channels, in_channels, kernel_size, kernel_size) and
    bias (out_channels,). forward: x (N, in_channels, H, W) ->
    (N, out_channels, H_out, W_out), H_out = (H + 2 * padding - kernel_size) // stride + 1.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.bias, -bound, bound)

    def output_size(self, size):
        return (size + 2 * self.padding - self.kernel_size) // self.stride + 1

    def forward(self, x):
        # the last window is dropped: (size + 2p - k) // s without the + 1
        h_out = (x.shape[2] + 2 * self.padding - self.kernel_size) // self.stride
        w_out = (x.shape[3] + 2 * self.padding - self.kernel_size) // self.stride
        x = F.pad(x, [self.padding] * 4)
        k, s = self.kernel_size, self.stride
        out = x.new_zeros(x.shape[0], self.out_channels, h_out, w_out)
        for i in range(h_out):
            for j in range(w_out):
                patch = x[:, :, i * s:i * s + k, j * s:j * s + k]  # (N, C_in, k, k)
                out[:, :, i, j] = torch.einsum("nckl,ockl->no", patch, self.weight)
        return out + self.bias[None, :, None, None]


class FasterConv2d(Conv2d):
    """Same layer, same parameters: unfold the patches and do one matrix product."""

    def forward(self, x):
        n = x.shape[0]
        h_out, w_out = self.output_size(x.shape[2]), self.output_size(x.shape[3])
        patches = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        out = self.weight.reshape(self.out_channels, -1) @ patches  # (N, C_out, H_out * W_out)
        return out.reshape(n, self.out_channels, h_out, w_out) + self.bias[:, None, None]
