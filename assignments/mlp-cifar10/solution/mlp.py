"""CS 480 A2 (spring 2023), question 2: an MLP for CIFAR-10 in PyTorch.

The notebook's code cells 2.1 to 2.3 in one file: MLPinPyTorch, accuracy(y, predicted) and
test(model, train_dataloader, test_dataloader). The data-loading cell (get_CIFAR10) is given
code, not part of the handin.
"""

import torch
from torch import nn

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


class MLPinPyTorch(nn.Module):
    """y_hat = softmax(W2 sigmoid(W1 x + c1) + c2), W1 3072x256 and W2 256x10."""

    def __init__(self, input_dim=3072, hidden_dim=256, output_dim=10):
        super().__init__()
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.out = nn.Linear(hidden_dim, output_dim)
        self.sigmoid = nn.Sigmoid()
        self.softmax = nn.Softmax(dim=1)
        nn.init.xavier_uniform_(self.hidden.weight)  # any initialisation is allowed
        nn.init.zeros_(self.hidden.bias)

    def forward(self, x):
        x = x.reshape(x.shape[0], -1)
        return self.softmax(self.out(self.sigmoid(self.hidden(x))))


def accuracy(y, predicted):
    """y: list of batches of one-hot true labels; predicted: list of batches of one-hot
    predictions (batches of class indices work too). Returns the fraction correct."""
    y, predicted = torch.cat(y), torch.cat(predicted)
    if y.ndim == 2:
        y = y.argmax(dim=1)
    if predicted.ndim == 2:
        predicted = predicted.argmax(dim=1)
    return (y == predicted).float().mean().item()


def _one_hot_lists(model, dataloader):
    labels, predictions = [], []
    with torch.no_grad():
        for inputs, targets in dataloader:
            outputs = model(inputs.view(-1, 3072).to(device))
            labels.append(nn.functional.one_hot(targets, 10))
            predictions.append(nn.functional.one_hot(outputs.argmax(dim=1).cpu(), 10))
    return labels, predictions


def test(model, train_dataloader, test_dataloader):
    """(train accuracy, test accuracy) of the model on the two loaders."""
    train_acc = accuracy(*_one_hot_lists(model, train_dataloader))
    test_acc = accuracy(*_one_hot_lists(model, test_dataloader))
    return train_acc, test_acc
