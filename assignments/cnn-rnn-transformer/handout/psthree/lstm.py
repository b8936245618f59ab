"""Problem 2(c): an LSTM layer from the gate equations and the sentiment model on it."""

import torch
import torch.nn as nn


class LSTMLayer(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.hidden_size = hidden_size
        # TODO: as nn.Parameter (weights (n_in, n_out), Xavier normal; biases zero):
        # input gate W_xi, W_hi, b_i; forget gate W_xf, W_hf, b_f; output gate W_xo, W_ho,
        # b_o; cell candidate W_xc, W_hc, b_c; output W_hy, b_y. Activations: nn.Sigmoid,
        # nn.Tanh.
        raise NotImplementedError("TODO: LSTMLayer.__init__")

    def forward(self, x):
        """x: (B, T, input_size) -> the output of every step, (B, T, output_size)."""
        # TODO: h_0 = c_0 = 0; each step: F_t, I_t, C~_t, C_t, O_t, h_t and the output.
        raise NotImplementedError("TODO: LSTMLayer.forward")

    def predict(self, x):
        self.eval()
        with torch.no_grad():
            outputs = self.forward(x)
            predictions = torch.argmax(outputs, dim=-1)
        return predictions


class LSTM(nn.Module):
    def __init__(self, tokenizer, embedding_size, hidden_size, output_size):
        super().__init__()
        self.tokenizer = tokenizer
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        # TODO: self.embedding (nn.Embedding over tokenizer.vocab_size) and self.lstm_layer
        raise NotImplementedError("TODO: LSTM.__init__")

    def forward(self, x):
        # TODO: token ids (B, T) -> embeddings -> lstm_layer -> (B, T, output_size)
        raise NotImplementedError("TODO: LSTM.forward")
