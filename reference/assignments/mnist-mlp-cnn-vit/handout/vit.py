"""Part 5: a small vision transformer for MNIST.

ViT(image_size=28, patch_size=7, in_channels=1, num_classes=10, d_model=64, depth=6,
num_heads=8, d_ff=128, dropout=0.0): cut each image into non-overlapping patch_size x
patch_size patches, embed each with a Linear layer, prepend a learned class token, add a
learned position embedding, apply depth PreLNEncoderLayers, a LayerNorm, and a Linear
head on the class token. x (N, C, H, W) -> class scores (N, num_classes).
"""

import torch
from torch import nn

from transformer import PreLNEncoderLayer


class ViT(nn.Module):
    def __init__(self, image_size=28, patch_size=7, in_channels=1, num_classes=10,
                 d_model=64, depth=6, num_heads=8, d_ff=128, dropout=0.0):
        super().__init__()
        raise NotImplementedError("ViT.__init__")

    def patches(self, x):
        """(N, C, H, W) -> (N, number of patches, C * patch_size * patch_size)."""
        raise NotImplementedError("ViT.patches")

    def forward(self, x):
        raise NotImplementedError("ViT.forward")
