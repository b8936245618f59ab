"""Your training choices for the MLP (the grader checks the bounds in the README)."""

MLP = {"optimizer": "adam", "lr": 2e-3, "batch_size": 64, "epochs": 3}
