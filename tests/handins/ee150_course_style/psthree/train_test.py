import torch
from tqdm import tqdm
import os

SEQUENCE_MODELS = ["rnn", "lstm", "transformer"]


def train(model, model_type, train_dataloader, val_dataloader, criterion, optimizer, num_epochs, metrics_logger, results_path):
    print("\n")
    for epoch in range(num_epochs):
        pbar = tqdm(train_dataloader, desc=f"Epoch {epoch+1} Train", ascii=' >=')
        for _, (inputs, targets) in enumerate(pbar):
            optimizer.zero_grad()
            outputs = model(inputs)
            if model_type in SEQUENCE_MODELS:
                outputs = outputs[:, -1, :]
            loss = criterion(outputs, targets)
            loss.backward()
            optimizer.step()
            probabilities = torch.nn.functional.softmax(outputs, dim=1)
            predictions = torch.argmax(probabilities, dim=1)
            num_correct = (predictions == targets).sum().item()
            metrics_logger.update('train_loss', loss.item())
            metrics_logger.update('train_accuracy', 100*num_correct/targets.size(0))
            pbar.set_postfix({'loss': f'{metrics_logger.get_epoch_average("train_loss"):.4f}'})

        pbar = tqdm(val_dataloader, desc=f"Epoch {epoch+1} Validation", ascii=' >=')
        for inputs, targets in pbar:
            with torch.no_grad():
                outputs = model(inputs)
                if model_type in SEQUENCE_MODELS:
                    outputs = outputs[:, -1, :]
                loss = criterion(outputs, targets)
                predictions = torch.argmax(outputs, dim=1)
                num_correct = (predictions == targets).sum().item()
                metrics_logger.update('val_loss', loss.item())
                metrics_logger.update('val_accuracy', 100*num_correct/targets.size(0))
        metrics_logger.next_epoch()
        print("\n")

    os.makedirs(os.path.join(results_path, "plots"), exist_ok=True)
    metrics_logger.plot_metric(["train_loss", "val_loss"], os.path.join(results_path, "plots", "train_loss.png"))
    metrics_logger.plot_metric(["train_accuracy", "val_accuracy"], os.path.join(results_path, "plots", "train_accuracy.png"))
    torch.save(model, os.path.join(results_path, f'{model_type}.pth'))
    print(f"Model saved at {os.path.join(results_path, f'{model_type}.pth')}")


def test(model, model_type, test_dataloader, criterion, metrics_logger, results_path):
    pbar = tqdm(test_dataloader, desc=f"Test", ascii=' >=')
    for _, (inputs, targets) in enumerate(pbar):
        with torch.no_grad():
            outputs = model(inputs)
            if model_type in SEQUENCE_MODELS:
                outputs = outputs[:, -1, :]
            loss = criterion(outputs, targets)
            predictions = torch.argmax(outputs, dim=1)
            num_correct = (predictions == targets).sum().item()
            metrics_logger.update('test_loss', loss.item())
            metrics_logger.update('test_accuracy', 100*num_correct/targets.size(0))
    with open(os.path.join(results_path, 'test_results.txt'), "w") as f:
        f.write(f"Test Accuracy: {metrics_logger.get_epoch_average('test_accuracy'):.2f}%\n")
