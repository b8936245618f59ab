"""Your training choices (the grader checks the bounds in the README): the MLP's optimiser,
learning rate, batch size and epochs; the CNN's learning rate (its optimiser, Adam, batch
size 32 and epochs are fixed by the handout)."""

MLP = {"optimizer": "adam", "lr": 2e-3, "batch_size": 64, "epochs": 3}
CNN = {"lr": 1e-3}
