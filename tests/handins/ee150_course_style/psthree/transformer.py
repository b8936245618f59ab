import torch
import torch.nn as nn
import numpy as np
from psthree.attention import MultiHeadAttention


class TransformerEncoder(nn.Module):
    """Normalisation first (pre-LN), then each sublayer and its residual."""

    def __init__(self, d_model, num_heads, d_ff, output_size):
        super(TransformerEncoder, self).__init__()
        self.attention = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.output_layer = nn.Linear(d_model, output_size)

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        x = x + self.ff(self.norm2(x))
        return self.output_layer(x)

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            return torch.argmax(self.forward(x), dim=-1)


class Transformer(nn.Module):
    def __init__(self, tokenizer, embedding_size, num_heads, d_ff, output_size, max_seq_length=512):
        super(Transformer, self).__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.max_seq_length = max_seq_length
        self.embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        self.register_buffer('positional_encoding', self._create_positional_encoding())
        self.transformer_encoder = TransformerEncoder(embedding_size, num_heads, d_ff, output_size)

    def _create_positional_encoding(self):
        position = torch.arange(self.max_seq_length).unsqueeze(1)
        rate = torch.exp(torch.arange(0, self.embedding_size, 2) * (-np.log(10000.0) / self.embedding_size))
        pe = torch.zeros(self.max_seq_length, self.embedding_size)
        pe[:, 0::2] = torch.sin(position * rate)
        pe[:, 1::2] = torch.cos(position * rate)
        return pe.unsqueeze(0)

    def forward(self, x):
        T = x.size(1)
        x = self.embedding(x) + self.positional_encoding[:, :T, :]
        return self.transformer_encoder(x)
