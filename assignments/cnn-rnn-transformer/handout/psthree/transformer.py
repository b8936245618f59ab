"""Problem 3(b): a transformer encoder on your MultiHeadAttention, and the sentiment model."""

import numpy as np
import torch
import torch.nn as nn

from psthree.attention import MultiHeadAttention


class TransformerEncoder(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, output_size):
        super().__init__()
        # TODO: self.attention (your MultiHeadAttention), self.norm1 and self.norm2 (the
        # norm from class, from torch.nn), self.ff = nn.Sequential(nn.Linear, nn.ReLU,
        # nn.Linear) as in section 3.3 of Attention Is All You Need, and
        # self.output_layer = nn.Linear(d_model, output_size)
        raise NotImplementedError("TODO: TransformerEncoder.__init__")

    def forward(self, x):
        # TODO: self-attention with a residual connection and normalisation, then the
        # feed-forward network with a residual connection and normalisation, then the
        # output layer: (B, T, d_model) -> (B, T, output_size)
        raise NotImplementedError("TODO: TransformerEncoder.forward")

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            outputs = self.forward(x)
            predictions = torch.argmax(outputs, dim=-1)
        return predictions


class Transformer(nn.Module):
    def __init__(self, tokenizer, embedding_size, num_heads, d_ff, output_size,
                 max_seq_length=512):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.max_seq_length = max_seq_length
        # TODO: self.embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        self.register_buffer("positional_encoding", self._create_positional_encoding())
        # TODO: self.transformer_encoder = TransformerEncoder(...) with d_model = embedding_size
        raise NotImplementedError("TODO: Transformer.__init__")

    def _create_positional_encoding(self):
        """Given: sinusoidal positions, (1, max_seq_length, embedding_size)."""
        position = torch.arange(self.max_seq_length).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, self.embedding_size, 2)
                              * (-np.log(10000.0) / self.embedding_size))
        encoding = torch.zeros(self.max_seq_length, self.embedding_size)
        encoding[:, 0::2] = torch.sin(position * frequency)
        encoding[:, 1::2] = torch.cos(position * frequency)
        return encoding.unsqueeze(0)

    def forward(self, x):
        steps = x.size(1)
        # TODO: token embedding, plus self.positional_encoding[:, :steps, :], then the encoder
        raise NotImplementedError("TODO: Transformer.forward")
