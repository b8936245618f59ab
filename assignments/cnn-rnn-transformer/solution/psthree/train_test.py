"""The training and test loops (problem 1(b) and 2(a)iv)."""

import os

import torch
from tqdm import tqdm

SEQUENCE_MODELS = ["rnn", "lstm", "transformer"]


def _scores(model, model_type, inputs):
    outputs = model(inputs)
    # a sequence model's prediction is its output at the last step
    return outputs[:, -1] if model_type in SEQUENCE_MODELS else outputs


def _log(metrics_logger, prefix, loss, predictions, targets):
    correct = (predictions == targets).sum().item()
    metrics_logger.update(f"{prefix}_loss", loss.item())
    metrics_logger.update(f"{prefix}_accuracy", 100 * correct / targets.size(0))


def train(model, model_type, train_dataloader, val_dataloader, criterion, optimizer,
          num_epochs, metrics_logger, results_path):
    for epoch in range(num_epochs):
        model.train()
        for inputs, targets in tqdm(train_dataloader, desc=f"Epoch {epoch + 1} Train"):
            optimizer.zero_grad()
            outputs = _scores(model, model_type, inputs)
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
            probabilities = torch.nn.functional.softmax(outputs, dim=-1)
            _log(metrics_logger, "train", loss, torch.argmax(probabilities, dim=-1), targets)
        model.eval()
        for inputs, targets in tqdm(val_dataloader, desc=f"Epoch {epoch + 1} Validation"):
            with torch.no_grad():
                outputs = _scores(model, model_type, inputs)
                loss = criterion(outputs, targets)
                _log(metrics_logger, "val", loss, torch.argmax(outputs, dim=-1), targets)
        metrics_logger.next_epoch()

    os.makedirs(os.path.join(results_path, "plots"), exist_ok=True)
    metrics_logger.plot_metric(["train_loss", "val_loss"],
                               os.path.join(results_path, "plots", "train_loss.png"))
    metrics_logger.plot_metric(["train_accuracy", "val_accuracy"],
                               os.path.join(results_path, "plots", "train_accuracy.png"))
    with open(os.path.join(results_path, "train_results.txt"), "w") as f:
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            f.write(f"{name}: {metrics_logger.get_last_epoch_average(name):.4f}\n")
    torch.save(model, os.path.join(results_path, f"{model_type}.pth"))


def test(model, model_type, test_dataloader, criterion, metrics_logger, results_path):
    model.eval()
    for inputs, targets in tqdm(test_dataloader, desc="Test"):
        with torch.no_grad():
            outputs = _scores(model, model_type, inputs)
            loss = criterion(outputs, targets)
            _log(metrics_logger, "test", loss, torch.argmax(outputs, dim=-1), targets)
    with open(os.path.join(results_path, "test_results.txt"), "w") as f:
        f.write(f"Test Loss: {metrics_logger.get_epoch_average('test_loss'):.4f}\n")
        f.write(f"Test Accuracy: {metrics_logger.get_epoch_average('test_accuracy'):.2f}%\n")
