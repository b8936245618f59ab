"""Part 4 (3 (b) of the handout): a pre-LN transformer encoder layer.

PreLNEncoderLayer(d_model, num_heads, d_ff, dropout): x (N, T, d_model) -> (N, T, d_model),
    x = x + dropout(W_o(attention(ln1(x))))
    x = x + dropout(B(dropout(ReLU(A(ln2(x))))))
with attention = MultiHeadAttention(d_model, num_heads, dropout) (the given code), W_o =
nn.Linear(d_model, d_model, bias=False), ln1, ln2 = nn.LayerNorm(d_model), A = Linear(d_model,
d_ff), B = Linear(d_ff, d_model): "dropout is used after the attention, inside the MLP, and
after the MLP".
"""

from torch import nn

from attention import MultiHeadAttention


class PreLNEncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.W_o = nn.Linear(d_model, d_model, bias=False)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(d_ff, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.dropout(self.W_o(self.attention(self.ln1(x))))
        return x + self.dropout(self.mlp(self.ln2(x)))
