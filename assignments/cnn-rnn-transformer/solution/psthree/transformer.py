"""A post-LN transformer encoder on the MultiHeadAttention of attention.py, and the
sentiment model: token embedding + sinusoidal positions + one encoder."""

import numpy as np
import torch
import torch.nn as nn

from psthree.attention import MultiHeadAttention


class TransformerEncoder(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, output_size):
        super().__init__()
        self.attention = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.output_layer = nn.Linear(d_model, output_size)

    def forward(self, x):
        x = self.norm1(x + self.attention(x))
        x = self.norm2(x + self.ff(x))
        return self.output_layer(x)

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            return torch.argmax(self.forward(x), dim=-1)


class Transformer(nn.Module):
    def __init__(self, tokenizer, embedding_size, num_heads, d_ff, output_size,
                 max_seq_length=512):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.max_seq_length = max_seq_length
        self.embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        self.register_buffer("positional_encoding", self._create_positional_encoding())
        self.transformer_encoder = TransformerEncoder(embedding_size, num_heads, d_ff,
                                                      output_size)

    def _create_positional_encoding(self):
        """Sines and cosines of position / 10000^(2i / d), shape (1, max_seq_length, d)."""
        position = torch.arange(self.max_seq_length).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, self.embedding_size, 2)
                              * (-np.log(10000.0) / self.embedding_size))
        encoding = torch.zeros(self.max_seq_length, self.embedding_size)
        encoding[:, 0::2] = torch.sin(position * frequency)
        encoding[:, 1::2] = torch.cos(position * frequency)
        return encoding.unsqueeze(0)

    def forward(self, x):
        steps = x.size(1)
        x = self.embedding(x) + self.positional_encoding[:, :steps, :]
        return self.transformer_encoder(x)
