"""torch.module_compare (grader/checks/torch_modules.py) and torch.function_compare
(grader/checks/torch_functions.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.checks.torch_common import ParamInfo, resolve_dims, substitute
from grader.checks.torch_modules import match_parameters
from grader.outcomes import Outcome
from tests.conftest import ROOT
from tests.grader.torch_handins import assignment, one

# The ViT course's reference layers and their bugs, beside the throwaway assignment's spec.
VIT_REFERENCES = {name: (ROOT / "assignments/mnist-mlp-cnn-vit" / name).read_text()
                  for name in ("layers.py", "layer_bugs.py")}

ATTENTION_TEST = """
[[tests]]
name = "attention"
check = "torch.module_compare"
points = 10
visibility = "{visibility}"
[tests.params]
module = "attention.SingleHeadAttention"
reference = "layers.py:SingleHeadAttention"
variants = "layer_bugs.py:ATTENTION"
dims = {{ batch = [2, 3], tokens = [3, 6], d_model = [4, 8], d_k = {{ choose = [3, 5] }} }}
init_args = ["$d_model", "$d_k"]
init_kwargs = {{ dropout = {dropout} }}
inputs = [["batch", "tokens", "d_model"]]
modes = ["eval", "train"]
"""

# Different attribute names than the reference (query/key/value vs W_q/W_k/W_v): the
# parameters are matched by shape and registration order.
ATTENTION = """
import math
import torch
from torch import nn


class SingleHeadAttention(nn.Module):
    def __init__(self, d_model, d_k, dropout=0.0):
        super().__init__()
        self.d_model, self.d_k = d_model, d_k
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_k, bias=False)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        scores = self.query(x) @ self.key(x).transpose(-2, -1) / SCALE
        return self.drop(torch.softmax(scores, dim=-1)) @ VALUE
"""


def attention(scale: str = "math.sqrt(self.d_k)", value: str = "self.value(x)") -> str:
    return ATTENTION.replace("SCALE", scale).replace("VALUE", value)


def attention_spec(tmp_path: Path, source: str, visibility: str = "visible",
                   dropout: float = 0.0) -> tuple[object, Path]:
    test = ATTENTION_TEST.format(visibility=visibility, dropout=dropout)
    return assignment(tmp_path, test, {"attention.py": source}, VIT_REFERENCES)


def test_correct_module_with_other_names_passes(tmp_path: Path) -> None:
    spec, handin = attention_spec(tmp_path, attention())
    result = one(spec, handin)  # type: ignore[arg-type]
    assert result.outcome is Outcome.PASSED, result.output
    assert "matches the reference" in result.output and "eval, train" in result.output


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_known_bug_gets_its_hint_for_any_seed(tmp_path: Path, seed: int) -> None:
    spec, handin = attention_spec(tmp_path, attention(scale="1.0"))
    result = one(spec, handin, seed=seed)  # type: ignore[arg-type]
    assert result.score == 0
    assert "forward output: values differ" in result.output
    assert "without the 1/sqrt(d_k) scaling" in result.output


def test_hidden_test_messages_leave_out_values(tmp_path: Path) -> None:
    spec, handin = attention_spec(tmp_path, attention(scale="1.0"), visibility="hidden")
    result = one(spec, handin)  # type: ignore[arg-type]
    assert result.score == 0 and "largest error" not in result.output
    assert "elements differ" in result.output


def test_layers_built_in_forward_are_named(tmp_path: Path) -> None:
    source = attention().replace(
        "        self.query = nn.Linear(d_model, d_k, bias=False)\n"
        "        self.key = nn.Linear(d_model, d_k, bias=False)\n"
        "        self.value = nn.Linear(d_model, d_k, bias=False)\n", ""
    ).replace("    def forward(self, x):\n", "    def forward(self, x):\n"
              "        self.query = self.key = self.value = nn.Linear(self.d_model, self.d_k)\n")
    spec, handin = attention_spec(tmp_path, source)
    result = one(spec, handin)  # type: ignore[arg-type]
    assert ("Your SingleHeadAttention registers 0 parameters but the reference has 3 "
            "(W_q, W_k, W_v): layers created inside forward() are not registered") in result.output


def test_a_parameter_that_gets_no_gradient_is_named(tmp_path: Path) -> None:
    detached = attention(value="x @ self.value.weight.detach().T")
    spec, handin = attention_spec(tmp_path, detached)
    result = one(spec, handin)  # type: ignore[arg-type]
    assert result.score == 0
    assert "value.weight got no gradient: is it used in forward()?" in result.output


def test_train_mode_with_active_dropout_is_compared_on_replayed_masks(tmp_path: Path) -> None:
    spec, handin = attention_spec(tmp_path, attention(), dropout=0.3)
    result = one(spec, handin)  # type: ignore[arg-type]
    assert result.outcome is Outcome.PASSED, result.output
    assert "(output, input_grads, param_grads; eval, train)" in result.output


def test_functional_dropout_without_the_training_flag_fails_in_eval_mode(
        tmp_path: Path) -> None:
    source = attention().replace("self.drop(torch.softmax(scores, dim=-1))",
                                 "nn.functional.dropout(torch.softmax(scores, dim=-1), 0.3)")
    spec, handin = attention_spec(tmp_path, source, dropout=0.3)
    result = one(spec, handin)  # type: ignore[arg-type]
    assert result.score == 0
    assert "in eval mode: forward output: values differ" in result.output
    assert ("Dropout differs: yours applied 1 time: dropout on (" in result.output
            and "with p=0.3; the reference applies no dropout in this pass." in result.output)
    assert "F.dropout(x, p) defaults to training=True" in result.output


@pytest.mark.parametrize("seed", [1, 2])
def test_dropout_in_the_wrong_place_fails_in_train_mode_only(tmp_path: Path, seed: int) -> None:
    source = attention().replace("self.drop(torch.softmax(scores, dim=-1)) @ self.value(x)",
                                 "self.drop(torch.softmax(scores, dim=-1) @ self.value(x))")
    spec, handin = attention_spec(tmp_path, source, dropout=0.3)
    result = one(spec, handin, seed=seed)  # type: ignore[arg-type]
    assert result.score == 0
    assert "in train mode: forward output: values differ" in result.output
    assert "apply it to the attention weights (after the softmax)" in result.output


def test_torch_dropout_is_replayed_too(tmp_path: Path) -> None:
    source = attention().replace("self.drop(torch.softmax(scores, dim=-1))",
                                 "torch.dropout(torch.softmax(scores, dim=-1), 0.3, self.training)")
    spec, handin = attention_spec(tmp_path, source, dropout=0.3)
    result = one(spec, handin)  # type: ignore[arg-type]
    assert result.outcome is Outcome.PASSED, result.output


def test_randomness_the_grader_cannot_replay_is_named(tmp_path: Path) -> None:
    """scaled_dot_product_attention's own dropout: right in eval mode, unrepeatable in train."""
    source = ATTENTION.replace(
        "        scores = self.query(x) @ self.key(x).transpose(-2, -1) / SCALE\n"
        "        return self.drop(torch.softmax(scores, dim=-1)) @ VALUE\n",
        "        return nn.functional.scaled_dot_product_attention(\n"
        "            self.query(x), self.key(x), self.value(x),\n"
        "            dropout_p=self.drop.p if self.training else 0.0)\n")
    assert "scaled_dot_product_attention" in source
    spec, handin = attention_spec(tmp_path, source, dropout=0.3)
    result = one(spec, handin)  # type: ignore[arg-type]
    assert result.score == 0 and "in train mode: forward output: values differ" in result.output
    assert ("gives two different outputs for the same input and the same dropout masks: it "
            "draws random numbers other than through nn.Dropout or F.dropout") in result.output


def test_a_different_dropout_rate_is_named(tmp_path: Path) -> None:
    source = attention().replace("nn.Dropout(dropout)", "nn.Dropout(0.5)")
    spec, handin = attention_spec(tmp_path, source, dropout=0.3)
    result = one(spec, handin)  # type: ignore[arg-type]
    assert result.score == 0 and "in train mode" in result.output
    assert "with p=0.5; the reference applies 1 time: dropout on (" in result.output


def test_parameters_are_matched_by_role() -> None:
    student = [ParamInfo("attn.W_k.weight", (4, 8), True),
               ParamInfo("attn.W_q.weight", (4, 8), True),
               ParamInfo("b", (3,), True), ParamInfo("c", (4, 8), True)]
    reference = [("W_q.weight", (4, 8)), ("W_k.weight", (4, 8)), ("bias", (3,)),
                 ("W_v.weight", (4, 8))]
    pairs, extra, missing = match_parameters(student, reference)
    assert pairs == {"W_q.weight": "attn.W_q.weight", "W_k.weight": "attn.W_k.weight",
                     "bias": "b", "W_v.weight": "c"}
    assert extra == [] and missing == []
    pairs, extra, missing = match_parameters(student[:1], reference[:2])
    assert missing == ["W_q.weight"] and pairs == {"W_k.weight": "attn.W_k.weight"}


def test_dims_are_drawn_per_attempt() -> None:
    spec = {"heads": [2, 4], "d_head": {"choose": [3]}, "d_model": "heads * d_head", "n": 5}
    dims = resolve_dims(spec, np.random.default_rng(0))
    assert dims["d_model"] == dims["heads"] * 3 and 2 <= dims["heads"] <= 4 and dims["n"] == 5
    assert substitute({"a": ["$n", "$d_model"], "b": "text"}, dims) == {
        "a": [5, dims["d_model"]], "b": "text"}
    with pytest.raises(ValueError, match="unknown size"):
        resolve_dims({"x": "missing * 2"}, np.random.default_rng(0))


REFERENCE = """
import torch
from torch import nn
from reference.matching import Variant


class Pair(nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.table = nn.Embedding(vocab, width)

    def forward(self, ids):
        out = self.table(ids)
        return out, out.sum(-1)


def accuracy(y, predicted):
    return (y.argmax(1) == predicted.argmax(1)).double().mean()


VARIANTS = [Variant("percent", "Return a fraction, not a percentage.",
                    lambda y, p: 100.0 * (y.argmax(1) == p.argmax(1)).mean())]
"""


def test_tuple_outputs_and_integer_inputs(tmp_path: Path) -> None:
    tests = """
    [[tests]]
    name = "pair"
    check = "torch.module_compare"
    points = 1
    [tests.params]
    module = "pair.Pair"
    reference = "ref.py:Pair"
    dims = { vocab = [5, 9], width = 4 }
    init_args = ["$vocab", "$width"]
    inputs = [{ shape = [3, 7], dtype = "int64", high = "vocab" }]
    """
    student = REFERENCE.replace("from reference.matching import Variant", "")
    student = student[: student.index("def accuracy")]
    spec, handin = assignment(tmp_path, tests, {"pair.py": student}, {"ref.py": REFERENCE})
    result = one(spec, handin)
    assert result.outcome is Outcome.PASSED, result.output


FUNCTION_TEST = """
[[tests]]
name = "accuracy"
check = "torch.function_compare"
points = 1
[tests.params]
function = "metrics.accuracy"
reference = "ref.py:accuracy"
variants = "ref.py:VARIANTS"
dims = { n = [5, 20] }
trials = 3
cases = [
  { args = [{ array = [[1, 0], [0, 1]] }, { array = [[0.9, 0.1], [0.8, 0.2]] }] },
  { args = [{ one_hot = ["n", 4] }, { softmax = ["n", 4] }] },
]
"""


@pytest.mark.parametrize(("body", "passes"), [
    ("return (y.argmax(1) == predicted.argmax(1)).float().mean()", True),
    ("return 100 * (y.argmax(1) == predicted.argmax(1)).float().mean()", False),
])
def test_function_compare(tmp_path: Path, body: str, passes: bool) -> None:
    student = f"def accuracy(y, predicted):\n    {body}\n"
    spec, handin = assignment(tmp_path, FUNCTION_TEST, {"metrics.py": student},
                              {"ref.py": REFERENCE})
    result = one(spec, handin)
    assert (result.outcome is Outcome.PASSED) is passes, result.output
    if not passes:
        assert "Return a fraction, not a percentage." in result.output


CONV_TEST = """
[[tests]]
name = "conv"
check = "torch.module_compare"
points = 10
[tests.params]
module = "conv.Conv2d"
reference = "reference.torch_layers:Conv2d"
dims = { n = 2, c_in = 2, c_out = 3, k = 3, h = 6, w = 6 }
init_args = ["$c_in", "$c_out", "$k", 1, 1]
inputs = [["n", "c_in", "h", "w"]]
banned_ops = ["convolution"]
banned_reason = "Write the convolution yourself"
"""

CONV = """
import torch
import torch.nn.functional as F
from torch import nn


class Conv2d(nn.Module):
    def __init__(self, c_in, c_out, k, stride=1, padding=0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.k, self.padding = k, padding

    def convolution(self, x):  # the course's own starter names a method so
        return BODY

    def forward(self, x):
        return self.convolution(x)
"""

LOOPS = ("(lambda p: torch.stack([torch.stack([torch.einsum('nckl,ockl->no', "
         "p[:, :, i:i + self.k, j:j + self.k], self.weight) for j in range(p.shape[3] - self.k + 1)"
         "], -1) for i in range(p.shape[2] - self.k + 1)], -2))(F.pad(x, [self.padding] * 4))"
         " + self.bias[None, :, None, None]")


@pytest.mark.parametrize(("body", "passes", "text"), [
    (LOOPS, True, "recorded computation keeps the rules and matches the reference"),
    ("F.conv2d(x, self.weight, self.bias, padding=self.padding)", False,
     "computes a convolution (what nn.Conv2d, F.conv2d and torch.conv2d compute) "
     "(aten.convolution.default). Write the convolution yourself."),
    ('getattr(F, "conv" + "2d")(x, self.weight, self.bias, padding=self.padding)', False,
     "(aten.convolution.default). Write the convolution yourself."),
])
def test_banned_operations_are_judged_by_the_computation(tmp_path: Path, body: str,
                                                         passes: bool, text: str) -> None:
    spec, handin = assignment(tmp_path, CONV_TEST, {"conv.py": CONV.replace("BODY", body)})
    result = one(spec, handin)
    assert (result.outcome is Outcome.PASSED) is passes, result.output
    assert text in result.output


def test_a_weight_stored_as_the_transpose_is_paired_with_the_reference() -> None:
    student = [ParamInfo("hidden1.weight", (4, 6), True), ParamInfo("hidden1.bias", (4,), True)]
    pairs, extra, missing = match_parameters(student, [("W1", (6, 4)), ("b1", (4,))])
    assert pairs == {"W1": "T:hidden1.weight", "b1": "hidden1.bias"}
    assert extra == [] and missing == []
