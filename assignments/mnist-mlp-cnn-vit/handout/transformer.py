"""Part 4 (3 (b) of the handout): a pre-LN transformer encoder layer.

PreLNEncoderLayer(d_model, num_heads, d_ff, dropout): x (N, T, d_model) -> (N, T, d_model).
Layer normalization before the multi-head attention and before the MLP, a residual
connection around each; after the given MultiHeadAttention(d_model, num_heads, dropout), a
nn.Linear(d_model, d_model) without bias (W^O); the MLP is B(ReLU(A(x))) with A =
Linear(d_model, d_ff) and B = Linear(d_ff, d_model); dropout after the attention, inside the
MLP and after the MLP.
"""

from torch import nn

from attention import MultiHeadAttention


class PreLNEncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        raise NotImplementedError("PreLNEncoderLayer.__init__")

    def forward(self, x):
        raise NotImplementedError("PreLNEncoderLayer.forward")
