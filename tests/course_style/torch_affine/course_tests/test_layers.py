"""EE 150-style pytest file: fixtures by name, seeding, torch.allclose and norms, backward
through the student's layer (course-style; written for dlgrade's tests)."""
import numpy as np
import pytest
import torch

from layers import Affine

CASES = ["square", "wide"]


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(150)


def load(case):
    return {key: torch.tensor(value) for key, value in np.load(f"fixtures/{case}.npz").items()}


@pytest.mark.parametrize("case", CASES)
def test_forward(case):
    data = load(case)
    layer = Affine(data["w"].shape[1], data["w"].shape[0]).double()
    with torch.no_grad():
        layer.linear.weight.copy_(data["w"])
        layer.linear.bias.copy_(data["b"])
    out = layer(data["x"])
    assert out.shape == data["y"].shape
    assert torch.allclose(out, data["y"], atol=1e-8)


@pytest.mark.parametrize("case", CASES)
def test_forward_from_a_state_dict(case):
    data = load(case)
    reference = torch.nn.Linear(data["w"].shape[1], data["w"].shape[0]).double()
    reference.weight.data, reference.bias.data = data["w"], data["b"]
    layer = Affine(data["w"].shape[1], data["w"].shape[0]).double()
    layer.linear.load_state_dict(reference.state_dict())
    torch.testing.assert_close(layer(data["x"]), torch.tanh(reference(data["x"])))


@pytest.mark.parametrize("case", CASES)
def test_backward(case):
    data = load(case)
    layer = Affine(data["w"].shape[1], data["w"].shape[0]).double()
    layer.linear.weight.data = data["w"].clone()
    layer.linear.bias.data = data["b"].clone()
    x = data["x"].clone().requires_grad_(True)
    out = layer(x)
    (out * data["upstream"]).sum().backward()
    assert x.grad is not None
    assert torch.norm(x.grad - data["dx"]) < 1e-8
    assert torch.allclose(layer.linear.weight.grad, data["dw"], atol=1e-8)
    assert (layer.linear.bias.grad - data["db"]).abs().max().item() < 1e-8


def test_random_init_in_range():
    layer = Affine(4, 3)  # seeded by the fixture: the same weights as in-process
    torch.manual_seed(7)  # the test's own draws: seeded again after the student's
    x = torch.randn(5, 4)
    y = layer(x)
    assert float(y.abs().max()) <= 1.0
