import torch
import torch.nn as nn


class Conv2d(nn.Module):
    def __init__(self, in_channels, out_channels, filter_size, padding=0, stride=1, filters=None, biases=None):
        super(Conv2d, self).__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.filter_size = filter_size
        self.padding = padding
        self.stride = stride
        self.filters = nn.Parameter(filters if filters is not None else torch.randn(out_channels, in_channels, filter_size, filter_size))
        self.biases = nn.Parameter(biases if biases is not None else torch.randn(out_channels))

    # loops over the batch, the filters and the output positions
    def convolution(self, x: torch.Tensor, filters: torch.Tensor):
        B, C_in, H, W = x.shape
        C_out = self.out_channels
        F = self.filter_size
        P = self.padding
        S = self.stride
        H_out = (H + 2 * P - F) // S + 1
        W_out = (W + 2 * P - F) // S + 1
        output = torch.zeros(B, C_out, H_out, W_out)
        padded_x = torch.zeros(B, C_in, H + 2 * P, W + 2 * P)
        padded_x[:, :, P:P + H, P:P + W] = x
        for b in range(B):
            for c in range(C_out):
                for i in range(H_out):
                    for j in range(W_out):
                        region = padded_x[b, :, i * S:i * S + F, j * S:j * S + F]
                        output[b, c, i, j] = torch.sum(region * self.filters[c])
        return output

    def forward(self, x: torch.Tensor):
        x = self.convolution(x, self.filters)
        return x + self.biases.view(1, -1, 1, 1)


class FasterConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, filter_size, padding=0, stride=1, filters=None, biases=None):
        super(FasterConv2d, self).__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.filter_size = filter_size
        self.padding = padding
        self.stride = stride
        self.filters = nn.Parameter(filters if filters is not None else torch.randn(out_channels, in_channels, filter_size, filter_size))
        self.biases = nn.Parameter(biases if biases is not None else torch.randn(out_channels))

    def convolution(self, x: torch.Tensor, filters: torch.Tensor):
        B, C_in, H, W = x.shape
        C_out, _, F, _ = filters.shape
        P, S = self.padding, self.stride
        H_out = (H + 2 * P - F) // S + 1
        W_out = (W + 2 * P - F) // S + 1
        output = torch.zeros(B, C_out, H_out, W_out)
        padded_x = torch.zeros(B, C_in, H + 2 * P, W + 2 * P)
        padded_x[:, :, P:P + H, P:P + W] = x
        f = filters.unsqueeze(0)  # (1, C_out, C_in, F, F)
        for i in range(H_out):
            for j in range(W_out):
                patch = padded_x[:, :, i * S:i * S + F, j * S:j * S + F].unsqueeze(1)
                output[:, :, i, j] = (patch * f).sum(dim=(2, 3, 4))
        return output

    def forward(self, x: torch.Tensor):
        x = self.convolution(x, self.filters)
        return x + self.biases.view(1, -1, 1, 1)
