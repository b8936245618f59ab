import torch
import torch.nn as nn
import numpy as np


def init(n_in, n_out):
    return nn.Parameter(torch.randn(n_in, n_out) * np.sqrt(2 / (n_in + n_out)))


class LSTMLayer(nn.Module):
    """The problem set's cell, softmax on the output included: y_t = softmax(W h_t + b_y)."""

    def __init__(self, input_size, hidden_size, output_size):
        super(LSTMLayer, self).__init__()
        self.hidden_size = hidden_size
        self.W_xi, self.W_hi, self.b_i = init(input_size, hidden_size), init(hidden_size, hidden_size), nn.Parameter(torch.zeros(hidden_size))
        self.W_xf, self.W_hf, self.b_f = init(input_size, hidden_size), init(hidden_size, hidden_size), nn.Parameter(torch.zeros(hidden_size))
        self.W_xo, self.W_ho, self.b_o = init(input_size, hidden_size), init(hidden_size, hidden_size), nn.Parameter(torch.zeros(hidden_size))
        self.W_xc, self.W_hc, self.b_c = init(input_size, hidden_size), init(hidden_size, hidden_size), nn.Parameter(torch.zeros(hidden_size))
        self.W_hy = init(hidden_size, output_size)
        self.b_y = nn.Parameter(torch.zeros(output_size))
        self.sigmoid = nn.Sigmoid()
        self.tanh = nn.Tanh()
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x):
        B, T, _ = x.shape
        h_t = torch.zeros(B, self.hidden_size)
        c_t = torch.zeros(B, self.hidden_size)
        outputs = []
        for t in range(T):
            x_t = x[:, t, :]
            f_t = self.sigmoid(x_t @ self.W_xf + h_t @ self.W_hf + self.b_f)
            i_t = self.sigmoid(x_t @ self.W_xi + h_t @ self.W_hi + self.b_i)
            c_tilde = self.tanh(x_t @ self.W_xc + h_t @ self.W_hc + self.b_c)
            c_t = f_t * c_t + i_t * c_tilde
            o_t = self.sigmoid(x_t @ self.W_xo + h_t @ self.W_ho + self.b_o)
            h_t = o_t * self.tanh(c_t)
            outputs.append(self.softmax(h_t @ self.W_hy + self.b_y))
        return torch.stack(outputs, dim=1)

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            return torch.argmax(self.forward(x), dim=-1)


class LSTM(nn.Module):
    def __init__(self, tokenizer, embedding_size, hidden_size, output_size):
        super(LSTM, self).__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        self.embedding = nn.Embedding(tokenizer.vocab_size, embedding_size)
        self.lstm_layer = LSTMLayer(embedding_size, hidden_size, output_size)

    def forward(self, x):
        x = self.embedding(x)
        x = self.lstm_layer(x)
        return x
