"""Constraint checks on PyTorch models (grader/checks/constraints.py), read from the
model's verified computation; the hostile models show what the sandbox's reports no longer
decide."""

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
        time.sleep(1.0)
        return super().forward(x)


class CachingLoopConv(LoopConv):  # the slow loops, answering repeated inputs from a cache
    cache = {}

    def forward(self, x):
        key = x.numpy().tobytes()
        if key not in CachingLoopConv.cache:
            CachingLoopConv.cache[key] = super().forward(x)
        return CachingLoopConv.cache[key]


class CachedLoopConv(LoopConv):  # 'slow' fills the shared cache for the input it is timed on
    def forward(self, x):
        out = super().forward(x)
        CachingLoopConv.cache[x.numpy().tobytes()] = out
        return out


class HiddenParameters(nn.Module):  # a summary and a parameter list that leave out a layer
    def __init__(self):
        super().__init__()
        self.small = nn.Linear(16, 4)
        self.big = nn.Linear(16, 512)
        self.out = nn.Linear(512, 4)

    def named_parameters(self, *args, **kwargs):
        return ((n, p) for n, p in super().named_parameters(*args, **kwargs) if "small" in n)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters())

    def forward(self, x):
        return self.out(torch.relu(self.big(x))) + 0 * self.small(x)


class KernelsOnLinear(nn.Module):  # an 'MLP' whose Linear layers carry convolution kernels
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 8)
        self.fc1.kernel = nn.Parameter(0.1 * torch.randn(8, 1, 3, 3))
        self.fc2 = nn.Linear(8 * 16, 4)

    def forward(self, x):
        images = x.reshape(-1, 1, 4, 4)
        conv = getattr(nn.functional, "conv" + "2d")
        hidden = torch.relu(conv(images, self.fc1.kernel, padding=1))
        return self.fc2(hidden.flatten(1)) + 0 * self.fc1(x).sum()


class UnusedNorms(nn.Module):  # Dropout and BatchNorm present, never used (or times zero)
    def __init__(self, times_zero=False):
        super().__init__()
        self.fc = nn.Linear(16, 4)
        self.drop = nn.Dropout(0.5)
        self.norm = nn.BatchNorm1d(16)
        self.times_zero = times_zero

    def forward(self, x):
        if self.times_zero:
            return self.fc(x) + 0 * self.norm(self.drop(x)).sum()
        return self.fc(x)


class UsedNorms(UnusedNorms):
    def forward(self, x):
        return self.fc(self.drop(self.norm(x)))


class ExtraFilters(nn.Module):  # 'frozen' hand-made filters, and trainable ones elsewhere
    def __init__(self, extra=True):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1).requires_grad_(False)
        self.more = nn.Module()
        self.more.filters = nn.Parameter(0.1 * torch.randn(28, 1, 3, 3)) if extra else None
        self.fc = nn.Linear((32 if extra else 4) * 16, 4)

    def forward(self, x):
        images = x.reshape(-1, 1, 4, 4)
        maps = self.conv(images)
        if self.more.filters is not None:
            extra = nn.functional.conv2d(images, self.more.filters, padding=1)
            maps = torch.cat([maps, extra], dim=1)
        return self.fc(torch.relu(maps).flatten(1))
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
    ('model = "models.MLP", input_shape = [16], max = 676', True, "676 parameters (limit 676)"),
    ('model = "models.MLP", input_shape = [16], max = 675', False,
     "the limit is 675. The largest layers: net.0 (544), net.2 (132)"),
    ('model = "models.Lazy", input_shape = [16], max = 68', True, "68 parameters"),
    ('model = "models.Frozen", input_shape = [16], max = 36, trainable_only = true', True,
     "36 trainable"),
    ('model = "models.Growing", input_shape = [16], max = 1000', False,
     "layers changed while it was being graded (added layers.2 (Linear))"),
    # the summary and the parameter list say 68; the computation reads 11,336 numbers
    ('model = "models.HiddenParameters", input_shape = [16], max = 1000', False,
     "computes its layers' weights from 10,756 stored numbers that are not parameters"),
])
def test_param_count(tmp_path: Path, params: str, passes: bool, text: str) -> None:
    outcome, output = check(tmp_path, "torch.param_count", params)
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


@pytest.mark.parametrize(("model", "extra", "passes", "text"), [
    ("MLP", "", True, "only allowed layers; its computation: ReLU, a matrix product"),
    ("ConvMLP", "", False, "conv (Conv1d)"),
    ("OwnWeights", "", False, "may not hold nn.Parameters directly"),
    ("OwnWeights", ", direct_parameters = true", True, "its computation: a matrix product"),
    # Linear modules only, as far as the module tree shows; the computation convolves
    ("KernelsOnLinear", "", False, "a convolution (what nn.Conv2d, F.conv2d and torch.conv2d "
     "compute) (aten.convolution.default), which the allowed layers (Linear, ReLU) do not "
     "compute."),
])
def test_allowed_layers(tmp_path: Path, model: str, extra: str, passes: bool, text: str) -> None:
    params = f'model = "models.{model}", allowed = ["Linear", "ReLU"], input_shape = [16]{extra}'
    outcome, output = check(tmp_path, "torch.allowed_layers", params)
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


NORMS = '{ Dropout = ["Dropout"], BatchNorm = ["BatchNorm1d"] }'


@pytest.mark.parametrize(("model", "required", "passes", "text"), [
    ("MLP", '{ Activation = ["ReLU", "GELU"] }', True, "every required layer, each used"),
    ("MLP", '{ BatchNorm = ["BatchNorm1d"] }', False,
     "BatchNorm (needs 1, found 0; batch normalization that changes the output)"),
    ("MLP", '{ Linear = { types = ["Linear"], min = 3 } }', False, "needs 3, found 2"),
    ("MLP", '{ Mine = { types = ["models.MLP"], min = 1 } }', False, "needs 1, found 0"),
    ("MLP", '{ Products = { ops = ["linear"], min = 2 } }', True, "every required layer"),
    ("UsedNorms", NORMS, True, "every required layer, each used"),
    # registered, so the module summary lists them; the computation does not use them
    ("UnusedNorms", NORMS, False, "Dropout (needs 1, found 0; dropout that changes the output); "
     "BatchNorm (needs 1, found 0;"),
    ("UnusedNorms(times_zero=True)", NORMS, False, "Dropout (needs 1, found 0;"),
])
def test_required_layers(tmp_path: Path, model: str, required: str, passes: bool,
                         text: str) -> None:
    name, _, args = model.partition("(")
    extra = ", init_kwargs = { times_zero = true }" if args else ""
    outcome, output = check(tmp_path, "torch.required_layers",
                            f'model = "models.{name}", required = {required}, '
                            f"input_shape = [16]{extra}")
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


@pytest.mark.parametrize(("model", "passes", "text"), [
    ("MLP", True, "32 hidden units (limit 40; net.0: 32, net.2: 4)"),
    ("MLP(64)", False, "64 hidden units; the limit is 40 (layer widths per example net.0: 64, "
     "net.2: 4; net.2 is the output layer)"),
    # its module tree holds two Linear layers 8 + 4 wide; its convolution makes 128 per example
    ("KernelsOnLinear", False, "136 hidden units; the limit is 40 (layer widths per example "
     "fc1: 128, fc2: 4, fc1: 8; fc2 is the output layer)"),
])
def test_hidden_units(tmp_path: Path, model: str, passes: bool, text: str) -> None:
    name, _, width = model.partition("(")
    args = f", init_args = [{width.rstrip(')')}]" if width else ""
    params = f'model = "models.{name}", input_shape = [16], max = 40{args}'
    outcome, output = check(tmp_path, "torch.hidden_units", params)
    assert (outcome is Outcome.PASSED) is passes, output
    assert text in output


@pytest.mark.parametrize(("params", "passes", "text"), [
    ('frozen = ["backbone.*"], trainable = ["head.*"]', True, "2 parameters are frozen"),
    ('frozen = ["head.*"]', False, "should be frozen (requires_grad=False): head.weight"),
    # the sneaky one moves its frozen weights itself, in train mode
    ('frozen = ["backbone.*"], init_kwargs = { sneaky = true }', False,
     "forward() changes parameter backbone.weight in place (aten.add_.Tensor)"),
    ('model = "models.ExtraFilters", init_kwargs = { extra = false }, frozen = ["conv.*"], '
     'frozen_ops = ["convolution"]', True, "2 parameters are frozen"),
    ('model = "models.ExtraFilters", frozen = ["conv.*"], frozen_ops = ["convolution"]', False,
     "every convolution must use frozen parameters, but more.filters require gradients"),
])
def test_frozen_parameters(tmp_path: Path, params: str, passes: bool, text: str) -> None:
    model = "" if "model =" in params else 'model = "models.Frozen", '
    outcome, output = check(tmp_path, "torch.frozen_parameters",
                            f"{model}{params}, input_shape = [16]")
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


def test_an_output_cache_gains_nothing(tmp_path: Path) -> None:
    """B11: 'fast' is the slow loops plus a cache that 'slow' fills with its answer for each
    input it is timed on. Timed first, on inputs nobody has seen, the cache has nothing."""
    params = ('slow = "models.CachedLoopConv", fast = "models.CachingLoopConv", '
              "inputs = [[4, 3, 16, 16]], min_ratio = 3, repeats = 3")
    outcome, output = check(tmp_path, "torch.speed_ratio", params)
    assert outcome is Outcome.FAILED, output
    assert "x faster than models.CachedLoopConv (median of 3; required 3x)." in output


def test_a_slowed_down_baseline_gains_nothing(tmp_path: Path) -> None:
    """docs/security.md B11: same loops as 'fast', a sleep in 'slow'."""
    params = (f'slow = "models.SleepyLoopConv", fast = "models.LoopConv", '
              f"inputs = [[2, 3, 8, 8]], min_ratio = 3, repeats = 3, {BASELINE}")
    outcome, output = check(tmp_path, "torch.speed_ratio", params)
    assert outcome is Outcome.FAILED, output
    assert "faster than the grader's own loop Conv2d (required 3x), though" in output
    assert ("x faster than your models.SleepyLoopConv: the speed-up must come from "
            "models.LoopConv itself, not from a slow models.SleepyLoopConv.") in output
    params = params.replace(f", {BASELINE}", "")  # what the ratio alone would have said
    (tmp_path / "without").mkdir()
    assert check(tmp_path / "without", "torch.speed_ratio", params)[0] is Outcome.PASSED
