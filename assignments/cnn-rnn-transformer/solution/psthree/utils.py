"""Given code: metrics logging and plotting, seeding, results folders."""

import os
import random
from collections import defaultdict
from datetime import datetime

import matplotlib.pyplot as plt
import numpy as np
import torch

SEED = 42


class MetricsLogger:
    """Values per step and per epoch for train/val/test loss and accuracy."""

    TRACKED = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss",
               "test_accuracy")

    def __init__(self):
        self.step_metrics = defaultdict(list)
        self.epoch_metrics = [defaultdict(list)]
        self.current_epoch = 0

    def update(self, metric_name, value):
        if metric_name in self.TRACKED:
            self.epoch_metrics[self.current_epoch][metric_name].append(value)
            self.step_metrics[f"{metric_name}_step"].append(value)

    def next_epoch(self):
        self.current_epoch += 1
        self.epoch_metrics.append(defaultdict(list))

    def get_epoch_average(self, metric_name, epoch=None):
        if metric_name not in self.TRACKED:
            return None
        epoch = self.current_epoch if epoch is None else epoch
        return np.mean(self.epoch_metrics[epoch][metric_name])

    def get_last_epoch_average(self, metric_name):
        return self.get_epoch_average(metric_name, epoch=self.current_epoch - 1)

    def plot_metric(self, metric_names, save_path):
        if isinstance(metric_names, str):
            metric_names = [metric_names]
        _, (by_epoch, by_step) = plt.subplots(2, 1, figsize=(10, 8))
        for name in metric_names:
            averages = [np.mean(e[name]) for e in self.epoch_metrics if e[name]]
            by_epoch.plot(range(len(averages)), averages, label=name)
            by_step.plot(self.step_metrics[f"{name}_step"], label=name)
        by_epoch.legend()
        by_step.legend()
        plt.tight_layout()
        plt.savefig(save_path)


def seed_everything():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    random.seed(SEED)
    os.environ["PYTHONHASHSEED"] = str(SEED)


def get_results_path(results_path, model_type, dataset_name=None):
    stamp = datetime.now().strftime("%H-%M-%S_%m-%d-%Y")
    parts = [results_path, model_type] + ([dataset_name] if dataset_name else []) + [stamp]
    path = os.path.join(*parts)
    os.makedirs(path, exist_ok=True)
    return path
