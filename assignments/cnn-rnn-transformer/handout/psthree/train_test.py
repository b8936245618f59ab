"""The training and test loops: complete the TODOs (problem 1(b)ii and 2(a)iv)."""

import os

import torch
from tqdm import tqdm

SEQUENCE_MODELS = ["rnn", "lstm", "transformer"]


def train(model, model_type, train_dataloader, val_dataloader, criterion, optimizer,
          num_epochs, metrics_logger, results_path):
    for epoch in range(num_epochs):
        for inputs, targets in tqdm(train_dataloader, desc=f"Epoch {epoch + 1} Train"):
            # TODO: zero the gradients, forward pass (for a sequence model, keep only the
            # last step's output), loss, backward, optimizer step; then the predictions
            # (softmax, argmax) and metrics_logger.update("train_loss", ...) and
            # metrics_logger.update("train_accuracy", 100 * correct / batch size)
            raise NotImplementedError("TODO: the training loop")
        for inputs, targets in tqdm(val_dataloader, desc=f"Epoch {epoch + 1} Validation"):
            with torch.no_grad():
                # TODO: as above without the update: "val_loss" and "val_accuracy"
                raise NotImplementedError("TODO: the validation loop")
        metrics_logger.next_epoch()

    os.makedirs(os.path.join(results_path, "plots"), exist_ok=True)
    metrics_logger.plot_metric(["train_loss", "val_loss"],
                               os.path.join(results_path, "plots", "train_loss.png"))
    metrics_logger.plot_metric(["train_accuracy", "val_accuracy"],
                               os.path.join(results_path, "plots", "train_accuracy.png"))
    torch.save(model, os.path.join(results_path, f"{model_type}.pth"))


def test(model, model_type, test_dataloader, criterion, metrics_logger, results_path):
    for inputs, targets in tqdm(test_dataloader, desc="Test"):
        with torch.no_grad():
            # TODO: forward pass (last step for a sequence model), loss, predictions, and
            # metrics_logger.update("test_loss", ...), ("test_accuracy", percent)
            raise NotImplementedError("TODO: the test loop")
    with open(os.path.join(results_path, "test_results.txt"), "w") as f:
        f.write(f"Test Accuracy: {metrics_logger.get_epoch_average('test_accuracy'):.2f}%\n")
