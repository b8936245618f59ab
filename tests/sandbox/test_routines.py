"""The in-sandbox PyTorch routines, called directly (they are plain functions), and once
through the process sandbox to show torch imports under its memory limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sandbox import protocol, routines
from sandbox.backend import SandboxConfig
from sandbox.process_backend import ProcessBackend
from sandbox.session import SessionLimits


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.scale = nn.Parameter(torch.ones(2))
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc(x)) * self.scale


def test_parameters_load_and_summary() -> None:
    model = Tiny()
    rows = routines.torch_parameters(model)
    assert [(r["name"], r["shape"]) for r in rows] == [
        ("scale", [2]), ("fc.weight", [2, 3]), ("fc.bias", [2])]
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert routines.torch_load_parameters(model, {"fc.weight": weight}) == 1
    assert np.array_equal(model.fc.weight.detach().numpy(), weight)
    with pytest.raises(ValueError, match="shape"):
        routines.torch_load_parameters(model, {"fc.weight": np.zeros((3, 2))})
    with pytest.raises(KeyError):
        routines.torch_load_parameters(model, {"nope": weight})
    summary = {r["name"]: r for r in routines.torch_summary(model)}
    assert summary[""]["params"] == 10 and summary[""]["own"] == {"scale": [2]}
    assert summary["fc"]["type"] == "torch.nn.modules.linear.Linear"
    assert summary["fc"]["config"]["out_features"] == 2 and summary["fc"]["leaf"]
    assert summary["drop"]["config"]["p"] == 0.5


def test_forward_gives_outputs_and_gradients_like_autograd() -> None:
    torch.manual_seed(0)
    model = Tiny()
    x = np.random.default_rng(0).standard_normal((4, 3))
    grad = np.ones((4, 2), dtype=np.float32)
    got = routines.torch_forward(model, [x], train=False, grad_output=[grad])
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    model.zero_grad()
    out = model.eval()(xt)
    out.sum().backward()
    assert got["backward"] == "done"
    assert got["output"][0].dtype == np.float32
    assert np.allclose(got["output"][0], out.detach().numpy())
    assert np.allclose(got["input_grads"][0], xt.grad.numpy())
    assert np.allclose(got["param_grads"]["fc.weight"], model.fc.weight.grad.numpy())


def test_forward_reports_why_backward_was_skipped() -> None:
    model = Tiny()
    wrong = routines.torch_forward(model, [np.zeros((4, 3))], train=False,
                                   grad_output=[np.zeros((4, 5))])
    assert wrong["backward"].startswith("skipped: output shape")
    for p in model.parameters():
        p.requires_grad_(False)
    detached = routines.torch_forward(model, [np.zeros((4, 3))], train=False,
                                      grad_output=[np.zeros((4, 2))], input_grads=False)
    assert "does not depend" in detached["backward"]


def test_capture_records_the_pass_as_plain_data() -> None:
    model = Tiny()
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    graph = routines.torch_capture(model, [x], train=False)
    assert [n["op"] for n in graph["nodes"] if "detach" not in n["op"]] == [
        "aten.t.default", "aten.addmm.default", "aten.mul.Tensor"]
    assert {p["name"] for p in graph["params"]} == {"scale", "fc.weight", "fc.bias"}
    assert graph["constants"] == [] and len(graph["outputs"]) == 1
    assert np.allclose(graph["output_values"][0], model(torch.tensor(x)).detach().numpy())
    protocol.encode(graph)  # plain data: nothing that would need pickling


def test_capture_marks_no_grad_regions_and_records_constants() -> None:
    class Frozen(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.table = torch.arange(2.0)  # a tensor, not a parameter or buffer

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                h = self.fc(x)
            return h + self.table

    graph = routines.torch_capture(Frozen(), [np.zeros((2, 3), dtype=np.float32)], train=True)
    assert all(n.get("grad") is False for n in graph["nodes"] if "addmm" in n["op"])
    assert [c["value"].tolist() for c in graph["constants"]] == [[0.0, 1.0]]


def test_call_converts_arrays_to_tensors_and_back() -> None:
    def accuracy(y: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        assert isinstance(y, torch.Tensor)
        return (y.argmax(1) == predicted.argmax(1)).float().mean()

    y = np.eye(3, dtype=np.float32)
    result = routines.torch_call(accuracy, [y, y], {})
    assert isinstance(result, np.ndarray) and float(result) == 1.0


@pytest.mark.sandbox
def test_torch_imports_and_runs_in_the_process_sandbox(
    tmp_path: Path, process_backend: ProcessBackend
) -> None:
    """RLIMIT_AS is the spec's memory_mb; CPU torch needs far less than the 8 GB given."""
    (tmp_path / "model.py").write_text(
        "from torch import nn\n\nclass M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(4, 2)\n"
        "    def forward(self, x):\n        return self.fc(x)\n")
    tmp_path.chmod(0o755)
    config = SandboxConfig(tmp_path, memory_mb=2048, threads=2)
    with process_backend.start(config, SessionLimits(call_timeout_s=60)) as session:
        model = session.import_module("model").attr("M").call()
        graph = session.routine("torch_capture", model, [np.ones((3, 4))], train=False)
        assert "aten.addmm.default" in [n["op"] for n in graph["nodes"]]
        out = session.routine("torch_forward", model, [np.ones((3, 4))], train=False)
        assert out["output"][0].shape == (3, 2)


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (1, 1), (2, 1)])
def test_the_speed_baseline_is_a_correct_convolution(stride: int, padding: int) -> None:
    generator = np.random.default_rng(0)
    x = generator.standard_normal((2, 3, 9, 8)).astype(np.float32)
    weight = generator.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = generator.standard_normal(4).astype(np.float32)
    want = torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(weight), torch.tensor(bias),
                                      stride=stride, padding=padding).numpy()
    for baseline in (routines.torch_conv2d_loops, routines.torch_conv2d_four_loops):
        got = baseline(x, weight, bias, stride=stride, padding=padding)
        assert got.shape == want.shape and np.allclose(got, want, atol=1e-5), baseline


class Steps(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(dim=1)


def test_last_step_takes_a_sequence_models_last_output() -> None:
    """(N, T, C) -> (N, C), the last step, as a course's loop takes outputs[:, -1]; other
    outputs pass through, and the wrapped model's parameters are the wrapper's."""
    x = torch.randn(2, 5, 3)
    assert torch.allclose(routines.torch_last_step(Steps())(x), x.sum(dim=1))
    wrapped = routines.torch_last_step(Tiny())
    assert wrapped(torch.randn(4, 3)).shape == (4, 2)
    assert [n for n, _ in wrapped.named_parameters()] == ["model.scale", "model.fc.weight",
                                                           "model.fc.bias"]
