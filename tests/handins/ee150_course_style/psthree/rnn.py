import torch
import torch.nn as nn
import numpy as np


class RNNLayer(nn.Module):
    """Weights as the problem set writes them: h_t = tanh(W_hh h_{t-1} + W_xh x_t + b_h)."""

    def __init__(self, input_size, hidden_size, output_size):
        super(RNNLayer, self).__init__()
        self.hidden_size = hidden_size
        self.W_xh = nn.Parameter(torch.randn(hidden_size, input_size) * np.sqrt(2 / (input_size + hidden_size)))
        self.W_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) * np.sqrt(2 / (hidden_size + hidden_size)))
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_hy = nn.Parameter(torch.randn(output_size, hidden_size) * np.sqrt(2 / (hidden_size + output_size)))
        self.b_y = nn.Parameter(torch.zeros(output_size))
        self.tanh = nn.Tanh()

    def forward(self, x):
        B, T, _ = x.shape
        hidden = torch.zeros(B, self.hidden_size)
        outputs = []
        for t in range(T):
            hidden = self.tanh(torch.matmul(hidden, self.W_hh.T) + torch.matmul(x[:, t, :], self.W_xh.T) + self.b_h)
            outputs.append(torch.matmul(hidden, self.W_hy.T) + self.b_y)
        return torch.stack(outputs, dim=1)

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            return torch.argmax(self.forward(x), dim=-1)


class RNN(nn.Module):
    def __init__(self, tokenizer, embedding_size, hidden_size, output_size):
        super(RNN, self).__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        self.rnn_layer = RNNLayer(embedding_size, hidden_size, output_size)

    def forward(self, x):
        return self.rnn_layer(self.embedding(x))
