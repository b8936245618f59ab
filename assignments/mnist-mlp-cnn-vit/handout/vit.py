"""Part 5 (3 (c) of the handout): a small vision transformer for MNIST, given code ("see
provided Vision Transformer code in the Colab notebook"): it runs your PreLNEncoderLayer.

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
        self.patch_size = patch_size
        count = (image_size // patch_size) ** 2
        self.embed = nn.Linear(in_channels * patch_size * patch_size, d_model)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d_model))
        self.position = nn.Parameter(torch.randn(1, count + 1, d_model) * 0.02)
        self.layers = nn.ModuleList(
            [PreLNEncoderLayer(d_model, num_heads, d_ff, dropout) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def patches(self, x):
        n, c = x.shape[:2]
        p = self.patch_size
        tiles = x.unfold(2, p, p).unfold(3, p, p)  # N, C, H/p, W/p, p, p
        return tiles.permute(0, 2, 3, 1, 4, 5).reshape(n, -1, c * p * p)

    def forward(self, x):
        tokens = self.embed(self.patches(x))
        tokens = torch.cat([self.cls_token.expand(len(x), -1, -1), tokens], dim=1)
        tokens = tokens + self.position
        for layer in self.layers:
            tokens = layer(tokens)
        return self.head(self.norm(tokens[:, 0]))
