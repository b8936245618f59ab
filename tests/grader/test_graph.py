"""grader.graph: a reported computation is checked as data, bounded on the meta device,
run with trusted ATen functions, and judged by what it computes."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from grader.graph import facts, ops
from grader.graph.run import Program
from grader.graph.train import Model, roles
from grader.graph.trusted import TrustedChild, TrustedTimeout
from grader.graph.wire import GraphError, GraphLimits, decode
from sandbox import protocol, routines

LIMITS = GraphLimits()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.norm = nn.BatchNorm2d(3)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(3 * 16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.relu(self.norm(self.conv(x))))
        return self.fc(h.flatten(1))


def recorded(model: nn.Module, x: np.ndarray, train: bool = False) -> dict[str, Any]:
    """What the sandbox's routine answers, through the wire format."""
    raw = routines.torch_capture(model, [x], train=train)
    decoded: dict[str, Any] = protocol.decode(protocol.encode(raw)[protocol.LENGTH.size:])
    return decoded


def program(raw: dict[str, Any], x: np.ndarray, train: bool = False) -> Program:
    graph = decode(raw, train=train, limits=LIMITS, input_shapes=[x.shape])
    made = Program(graph, LIMITS)
    made.validate([x])
    return made


X = np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)


def test_a_recording_reruns_to_the_same_outputs_and_reads_its_layers() -> None:
    model = Net()
    made = program(recorded(model, X), X)
    found = facts.read(made, 4)
    assert {f for f in found.families.values()} >= {"convolution", "batch_norm", "linear"}
    assert [(layer.family, layer.width) for layer in found.layers] == [
        ("convolution", 48), ("linear", 5)]
    assert found.param_elements == sum(p.numel() for p in model.parameters())
    (out,) = made.run([torch.tensor(X)], made.initial_state())
    assert torch.allclose(out, model.eval()(torch.tensor(X)), atol=1e-6)


def test_train_mode_replays_the_sandboxs_dropout_masks() -> None:
    model = Net()
    made = program(recorded(model, X, train=True), X, train=True)
    found = facts.read(made, 4)
    assert [round(p, 6) for _, p in found.dropout] == [0.3]
    mine = routines.torch_forward(copy.deepcopy(model), [X], train=True, input_grads=False,
                                  dropout_seed=11)["output"][0]
    (theirs,) = made.run([torch.tensor(X)], made.initial_state(), dropout_seed=11)
    assert np.allclose(mine, theirs.detach().numpy(), atol=1e-6)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda raw: raw["nodes"][0].update(op="aten.from_file.default"),
     "uses aten.from_file.default, an operation the grader does not run"),
    (lambda raw: raw["nodes"][0].update(op="prims.add.default"), "does not run"),
    (lambda raw: raw["nodes"][0]["args"].__setitem__(0, {"t": 999}),
     "reads a tensor the computation never defined"),
    (lambda raw: raw["nodes"][0]["args"].__setitem__(0, {"t": "0"}), "never defined"),
    (lambda raw: raw["nodes"][0]["args"].__setitem__(0, {"x": 0}), "malformed argument"),
    (lambda raw: raw["params"][0].update(tid=raw["inputs"][0]), "defined twice"),
    (lambda raw: raw["params"][0].update(value="weights"), "numeric array"),
    (lambda raw: raw.update(outputs=[12345]), "not tensors of the computation"),
])
def test_malformed_recordings_are_refused_as_data(edit: Any, message: str) -> None:
    raw = recorded(Net(), X)
    edit(raw)
    with pytest.raises(GraphError, match=message):
        program(raw, X)


def test_sizes_are_bounded_on_the_meta_device_before_anything_is_allocated() -> None:
    """A claimed 2**40-element tensor is refused without a byte of it being allocated."""
    raw = recorded(Net(), X)
    raw["nodes"].insert(0, {"op": "aten.zeros.default", "args": [[1 << 20, 1 << 20]],
                            "kwargs": {}, "out": 10_000})
    with pytest.raises(GraphError, match=r"makes a tensor of shape \(1048576, 1048576\)"):
        program(raw, X)
    too_many = GraphLimits(max_nodes=3)
    with pytest.raises(GraphError, match="at most 3 are allowed"):
        decode(recorded(Net(), X), train=False, limits=too_many, input_shapes=[X.shape])


def test_a_recording_that_does_not_give_its_recorded_outputs_is_refused() -> None:
    raw = recorded(Net(), X)
    raw["output_values"] = [v + 1 for v in raw["output_values"]]
    with pytest.raises(GraphError, match="does not give the outputs"):
        program(raw, X)


class Mutating(nn.Module):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 2)
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self.target == "weight":
            self.fc.weight.detach().mul_(1.5)   # through a view: the version counter tells
        elif self.target == "input":
            x.add_(1.0)
        return self.fc(x)


@pytest.mark.parametrize(("target", "message"), [
    ("weight", "changes parameter fc.weight in place"), ("input", "changes its input in place")])
def test_in_place_changes_of_parameters_and_inputs_are_refused(target: str, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        program(recorded(Mutating(target), X), X)


def test_batch_norm_may_move_its_statistics() -> None:
    made = program(recorded(Net(), X, train=True), X, train=True)
    assert "batch_norm" in facts.read(made, 4).families.values()


class DeadConvolution(nn.Module):
    """Computes F.conv2d only to compare it with its own loops: it never reaches the output."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 1, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x.new_zeros(x.shape[0], 2, 2, 2)
        for i in range(2):
            for j in range(2):
                patch = x[:, :, i:i + 3, j:j + 3]
                out[:, :, i, j] = torch.einsum("nckl,ockl->no", patch, self.weight)
        check = nn.functional.conv2d(x, self.weight)
        assert torch.allclose(check, out, atol=1e-4)
        return out


def test_only_operations_that_reach_the_output_are_judged() -> None:
    made = program(recorded(DeadConvolution(), X), X)
    found = facts.read(made, 4)
    assert "convolution" not in found.families.values()   # the check, never used
    assert "linear" in found.families.values()            # the loops, written into `out`
    assert any(made.graph.nodes[i].packet == "convolution" for i in range(len(made.graph.nodes)))


def test_every_allowed_op_has_a_family_and_layers_map_to_families() -> None:
    assert ops.family("aten.addmm.default") == "linear"
    assert ops.family("aten.div_.Scalar") == "arithmetic"
    assert not ops.is_allowed("from_file", "default")
    assert not ops.is_allowed("add", "out")
    assert ops.families_of_layers(["Linear", "ReLU"], False) == {"linear", "bias", "relu",
                                                                "structural"}
    with pytest.raises(ValueError, match="unknown layer names"):
        ops.families_of_layers(["Lienar"], False)


def test_the_grader_initialises_by_role() -> None:
    made = program(recorded(Net(), X, train=True), X, train=True)
    found = roles(made)
    assert found["conv.weight"].kind == "uniform" and found["conv.weight"].fan_in == 9
    assert found["fc.weight"].fan_in == 48 and found["fc.bias"].fan_in == 48
    assert found["norm.weight"].kind == "ones" and found["norm.bias"].kind == "zeros"
    model = Model({"train": made})
    model.initialise("trusted", 0, [])
    bound = 1 / math.sqrt(48)
    assert float(model.params["fc.weight"].detach().abs().max()) <= bound
    assert torch.equal(model.buffers["norm.running_var"], torch.ones(3))
    assert not torch.equal(model.params["fc.weight"],
                           torch.tensor(made.graph.param_named("fc.weight").value))  # type: ignore[union-attr]


def test_the_trusted_child_answers_and_is_killed_past_its_limit() -> None:
    model = Net()
    raw = recorded(model, X)
    with TrustedChild(memory_mb=2048, threads=1) as child:
        found = child.request("load", key="eval", graph=raw, train=False, inputs=[X])
        assert found["param_elements"] == sum(p.numel() for p in model.parameters())
        with pytest.raises(GraphError, match="an operation the grader does not run"):
            bad = copy.deepcopy(raw)
            bad["nodes"][0]["op"] = "aten.from_file.default"
            child.request("load", key="bad", graph=bad, train=False, inputs=[X])
        big = np.zeros((1, 1, 256, 256), dtype=np.float32)
        slow = recorded(nn.Sequential(*[nn.Conv2d(1, 1, 9, padding=4) for _ in range(20)]), big)
        child.request("load", key="slow", graph=slow, train=False, inputs=[big], timeout=600)
        with pytest.raises(TrustedTimeout):
            child.request("forward", key="slow", inputs=[big] * 1, timeout=0.01)
        assert child.process.poll() is not None  # killed


def test_the_trusted_child_finds_dlgrade_without_an_installed_package() -> None:
    """The child runs under -I (no PYTHONPATH, no working directory): a worker run from a
    checkout, dlgrade not pip-installed, must still find ``grader`` (the GPU proof's
    machine is such a worker; every verified-model test failed there to start)."""
    import subprocess
    import sys

    from grader.graph.trusted import BOOT, CODE_ROOT

    probe = (BOOT.split("; runpy")[0] + "; import importlib.util; "
             "print(importlib.util.find_spec('grader.graph.child').origin)")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe, CODE_ROOT], cwd="/",
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(CODE_ROOT)
