"""A post-LN transformer encoder layer built on your MultiHeadAttention."""

from torch import nn

from attention import MultiHeadAttention


class TransformerEncoderLayer(nn.Module):
    """attention: MultiHeadAttention(embed_dim, num_heads); norm1, norm2: nn.LayerNorm(embed_dim);
    feed_forward: nn.Sequential(nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim)).

        x = norm1(x + attention(x))
        x = norm2(x + feed_forward(x))

    forward: x (N, T, embed_dim) -> (N, T, embed_dim). No dropout.
    """

    def __init__(self, embed_dim, num_heads, ff_dim):
        super().__init__()
        self.attention = MultiHeadAttention(embed_dim, num_heads)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(embed_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, embed_dim)
        )
        self.norm2 = nn.LayerNorm(embed_dim)

    def forward(self, x):
        x = self.norm1(self.attention(x))
        return self.norm2(x + self.feed_forward(x))
