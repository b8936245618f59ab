"""Your training choices for the MLP (the grader checks the bounds in the README)."""

MLP = {"optimizer": "sgd", "lr": 0.01, "batch_size": 64, "epochs": 1}
