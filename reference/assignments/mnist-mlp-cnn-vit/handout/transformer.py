"""Part 4: a pre-LN transformer encoder layer.

PreLNEncoderLayer(d_model, num_heads, d_ff, dropout): x (N, T, d_model) -> (N, T, d_model),
    x = x + dropout(attention(ln1(x)))
    x = x + dropout(mlp(ln2(x)))
with attention = MultiHeadAttention(d_model, num_heads, dropout) (bias-free output
projection), ln1, ln2 = nn.LayerNorm(d_model) and mlp = Linear(d_model, d_ff), GELU,
Linear(d_ff, d_model).
"""

from torch import nn

from attention import MultiHeadAttention


class PreLNEncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        raise NotImplementedError("PreLNEncoderLayer.__init__")

    def forward(self, x):
        raise NotImplementedError("PreLNEncoderLayer.forward")
