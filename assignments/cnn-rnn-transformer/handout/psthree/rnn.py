"""Problem 2(a): an Elman RNN layer and the sentiment model built on it."""

import torch
import torch.nn as nn


class RNNLayer(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        # TODO: weights and biases as nn.Parameter: W_xh, W_hh, b_h, W_hy, b_y.
        # Weights (n_in, n_out), Xavier normal: mean 0, variance 2 / (n_in + n_out)
        # (torch.randn); biases zero (torch.zeros). Activation: nn.Tanh.
        raise NotImplementedError("TODO: RNNLayer.__init__")

    def forward(self, x):
        """x: (B, T, input_size) -> the output of every step, (B, T, output_size)."""
        # TODO: h_0 = 0; for each step, the hidden state and the output (problem set
        # equations); torch.stack the outputs along the time axis.
        raise NotImplementedError("TODO: RNNLayer.forward")

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            outputs = self.forward(x)
            predictions = torch.argmax(outputs, dim=-1)
        return predictions


class RNN(nn.Module):
    def __init__(self, tokenizer, embedding_size, hidden_size, output_size):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        # TODO: self.embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        # and self.rnn_layer = RNNLayer(...)
        raise NotImplementedError("TODO: RNN.__init__")

    def forward(self, x):
        # TODO: token ids (B, T) -> embeddings -> rnn_layer -> (B, T, output_size)
        raise NotImplementedError("TODO: RNN.forward")
