"""CS 480 A2 (spring 2023), question 2: an MLP for CIFAR-10 in PyTorch.

Your code cells 2.1 to 2.3 of the notebook, in one file. The data-loading code
(get_CIFAR10, batch size 100) is given: do not hand it in, the grader brings its own.
"""

import torch
from torch import nn

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


##### COMPLETE THE FOLLOWING CODE, YOU ARE ALLOWED TO CHANGE THE PARAMETERS#####
# Define the MLP model in PyTorch
class MLPinPyTorch(nn.Module):
    def __init__(self, input_dim=3072, hidden_dim=256, output_dim=10):
        super(MLPinPyTorch, self).__init__()
        # TODO: Your code here: init with parameters
        #       you are allowed to use any initialization method
        raise NotImplementedError("MLPinPyTorch.__init__")

    def forward(self, x):
        # TODO: Your code here: forward
        raise NotImplementedError("MLPinPyTorch.forward")


##### COMPLETE THE FOLLOWING CODE, YOU ARE ALLOWED TO CHANGE THE PARAMETERS#####
def accuracy(y, predicted):
    # TODO: Your code here: calculate accuracy
    """
    y: list of tensors. Each element of the list is a batch of one-hot encoded true label
    predicted: list of tensors. Each element of the list is a batch of one-hot encoded predictions
    """
    raise NotImplementedError("accuracy")


##### COMPLETE THE FOLLOWING CODE, YOU ARE ALLOWED TO CHANGE THE PARAMETERS#####
def test(model, train_dataloader, test_dataloader):
    # TODO: Your code here: calculate accuracy
    raise NotImplementedError("test")
