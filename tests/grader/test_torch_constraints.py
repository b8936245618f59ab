"""Constraint checks on PyTorch models (grader/checks/constraints.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.outcomes import Outcome
from tests.grader.torch_handins import assignment, one

MODELS = """
import time
import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, 4))

    def forward(self, x):
        return self.net(x)


class Lazy(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.LazyLinear(4)

    def forward(self, x):
        return self.fc(x)


class ConvMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3, padding=1)
        self.fc = nn.Linear(32, 4)

    def forward(self, x):
        return self.fc(self.conv(x[:, None]).flatten(1))


class OwnWeights(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(16, 4))

    def forward(self, x):
        return x @ self.w


class Growing(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(16, 4)])

    def forward(self, x):
        self.layers.append(nn.Linear(4, 4))
        return self.layers[0](x)


class Frozen(nn.Module):
    def __init__(self, sneaky=False):
        super().__init__()
        self.backbone = nn.Linear(16, 8).requires_grad_(False)
        self.head = nn.Linear(8, 4)
        self.sneaky = sneaky

    def forward(self, x):
        if self.sneaky and self.training:
            with torch.no_grad():
                self.backbone.weight.add_(0.01)
        return self.head(self.backbone(x))


class Slow(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        time.sleep(0.03)
        return self.fc(x)


class Fast(Slow):
    def forward(self, x):
        return self.fc(x)


class Wrong(Slow):
    def forward(self, x):
        return self.fc(x) + 1


class LoopConv(nn.Module):  # 3 -> 4 channels, kernel 3, padding 1: a product per position
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(0.1 * torch.randn(4, 3, 3, 3))
        self.bias = nn.Parameter(torch.zeros(4))

    def forward(self, x):
        x = nn.functional.pad(x, [1] * 4)
        out = x.new_zeros(x.shape[0], 4, x.shape[2] - 2, x.shape[3] - 2)
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                out[:, :, i, j] = torch.einsum("nckl,ockl->no", x[:, :, i:i + 3, j:j + 3],
                                               self.weight)
        return out + self.bias[None, :, None, None]


class UnfoldConv(LoopConv):
    def forward(self, x):
        patches = nn.functional.unfold(x, 3, padding=1)
        out = (self.weight.reshape(4, -1) @ patches).reshape(x.shape[0], 4, *x.shape[2:])
        return out + self.bias[None, :, None, None]


class SleepyLoopConv(LoopConv):  # B11: it sleeps, so the same loops look fast beside it
    def forward(self, x):
        time.sleep(0.2)
        return super().forward(x)
"""

BASELINE = "baseline = { in_channels = 3, out_channels = 4, kernel_size = 3, padding = 1 }"


def check(tmp_path: Path, name: str, params: str) -> tuple[Outcome, str]:
    tests = f"""
    [[tests]]
    name = "t"
    check = "{name}"
    points = 1
    params = {{ {params} }}
    """
    spec, handin = assignment(tmp_path, tests, {"models.py": MODELS})
    result = one(spec, handin)
    return result.outcome, result.output


@pytest.mark.parametrize(("params", "passes", "text"), [
    ('model = "models.MLP", max = 676', True, "676 parameters (limit 676)"),
    ('model = "models.MLP", max = 675', False, "the limit is 675. The largest layers: net.0"),
    ('model = "models.Lazy", input_shape = [16], max = 68', True, "68 parameters"),
    ('model = "models.Frozen", max = 36, trainable_only = true', True, "36 trainable"),
    ('model = "models.Growing", input_shape = [16], max = 1000', False,
     "layers changed while it was being graded (added layers.2 (Linear))"),
])
def test_param_count(tmp_path: Path, params: str, passes: bool, text: str) -> None:
    outcome, output = check(tmp_path, "torch.param_count", params)
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


@pytest.mark.parametrize(("model", "extra", "passes", "text"), [
    ("MLP", "", True, "only allowed layers (Linear, ReLU)"),
    ("ConvMLP", "", False, "conv (Conv1d)"),
    ("OwnWeights", "", False, "may not hold nn.Parameters directly"),
    ("OwnWeights", ", direct_parameters = true", True, "only allowed layers (none)"),
])
def test_allowed_layers(tmp_path: Path, model: str, extra: str, passes: bool, text: str) -> None:
    params = f'model = "models.{model}", allowed = ["Linear", "ReLU"]{extra}'
    outcome, output = check(tmp_path, "torch.allowed_layers", params)
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


@pytest.mark.parametrize(("required", "passes", "text"), [
    ('{ Activation = ["ReLU", "GELU"] }', True, "every required layer"),
    ('{ BatchNorm = ["BatchNorm1d"] }', False, "BatchNorm (needs 1, found 0; any of BatchNorm1d)"),
    ('{ Linear = { types = ["Linear"], min = 3 } }', False, "needs 3, found 2"),
    ('{ Mine = { types = ["models.MLP"], min = 1 } }', False, "needs 1, found 0"),
])
def test_required_layers(tmp_path: Path, required: str, passes: bool, text: str) -> None:
    outcome, output = check(tmp_path, "torch.required_layers",
                            f'model = "models.MLP", required = {required}')
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


@pytest.mark.parametrize(("hidden", "passes", "text"), [
    (32, True, "32 hidden units (limit 40)"),
    (64, False, "64 hidden units; the limit is 40 (Linear output widths net.0: 64, net.2: 4"),
])
def test_hidden_units(tmp_path: Path, hidden: int, passes: bool, text: str) -> None:
    params = f'model = "models.MLP", init_args = [{hidden}], input_shape = [16], max = 40'
    outcome, output = check(tmp_path, "torch.hidden_units", params)
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


@pytest.mark.parametrize(("params", "passes", "text"), [
    ('frozen = ["backbone.*"], trainable = ["head.*"], input_shape = [16], classes = 4',
     True, "2 parameters are frozen"),
    ('frozen = ["head.*"]', False, "should be frozen (requires_grad=False): head.weight"),
    ('frozen = ["backbone.*"], init_kwargs = { sneaky = true }, input_shape = [16], '
     'classes = 4', False, "changed during training although they are frozen: backbone.weight"),
])
def test_frozen_parameters(tmp_path: Path, params: str, passes: bool, text: str) -> None:
    outcome, output = check(tmp_path, "torch.frozen_parameters",
                            f'model = "models.Frozen", {params}')
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


@pytest.mark.parametrize(("fast", "ratio", "passes", "text"), [
    ("Fast", 3, True, "models.Fast is"),
    ("Fast", 10000, False, "required 10000x"),
    ("Wrong", 1, False, "models.Wrong output: values differ"),
])
def test_speed_ratio(tmp_path: Path, fast: str, ratio: int, passes: bool, text: str) -> None:
    params = (f'slow = "models.Slow", fast = "models.{fast}", inputs = [[8, 16]], '
              f"min_ratio = {ratio}, repeats = 3")
    outcome, output = check(tmp_path, "torch.speed_ratio", params)
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


def test_speed_ratio_against_the_graders_own_baseline(tmp_path: Path) -> None:
    params = ('slow = "models.LoopConv", fast = "models.UnfoldConv", '
              f"inputs = [[4, 3, 16, 16]], min_ratio = 3, repeats = 3, {BASELINE}")
    outcome, output = check(tmp_path, "torch.speed_ratio", params)
    assert outcome is Outcome.PASSED, output
    assert "x faster than the grader's own loop Conv2d (required 3x)." in output


def test_a_slowed_down_baseline_gains_nothing(tmp_path: Path) -> None:
    """docs/security.md B11: same loops as 'fast', a sleep in 'slow'."""
    params = (f'slow = "models.SleepyLoopConv", fast = "models.LoopConv", '
              f"inputs = [[4, 3, 16, 16]], min_ratio = 3, repeats = 3, {BASELINE}")
    outcome, output = check(tmp_path, "torch.speed_ratio", params)
    assert outcome is Outcome.FAILED, output
    assert "faster than the grader's own loop Conv2d (required 3x), though" in output
    assert ("x faster than your models.SleepyLoopConv: the speed-up must come from "
            "models.LoopConv itself, not from a slow models.SleepyLoopConv.") in output
    params = params.replace(f", {BASELINE}", "")  # what the ratio alone would have said
    (tmp_path / "without").mkdir()
    assert check(tmp_path / "without", "torch.speed_ratio", params)[0] is Outcome.PASSED
