"""reference.torch_bugs: every variant is a real bug, is recognised, and the right answer is not."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from reference import torch_layers as ref
from reference.torch_bugs import (
    FUNCTION_VARIANTS,
    VARIANTS,
    TorchVariant,
    matching_module_variant,
    matching_variant,
    unregistered_hint,
    variant_output,
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: a second intra-op thread only adds hand-off cost (10x on a busy host)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SETTINGS = settings(max_examples=5, deadline=None, database=None)
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)

# list name -> (reference class, constructor args, input shape). Every bug is observable
# with these: stride >= 2, padding >= 1, kernel >= 2, heads >= 2, T >= 2, batch >= 2.
CASES: dict[str, tuple[Callable[..., nn.Module], tuple[Any, ...], tuple[int, ...]]] = {
    "conv2d": (ref.Conv2d, (2, 3, 3, 2, 1), (2, 2, 7, 8)),
    "faster_conv2d": (ref.FasterConv2d, (2, 3, 3, 2, 1), (2, 2, 7, 8)),
    "rnn_layer": (ref.RNNLayer, (3, 4), (2, 5, 3)),
    "rnn": (ref.RNN, (3, 4, 2), (2, 5, 3)),
    "lstm_layer": (ref.LSTMLayer, (3, 4), (2, 5, 3)),
    "lstm": (ref.LSTM, (3, 4, 2), (2, 5, 3)),
    "self_attention": (ref.SelfAttention, (6,), (2, 4, 6)),
    "multi_head_attention": (ref.MultiHeadAttention, (6, 2), (2, 4, 6)),
    "transformer_encoder_layer": (ref.TransformerEncoderLayer, (6, 2, 8), (2, 4, 6)),
    "transformer_encoder_layer_pre_ln": (
        lambda e, h, f: ref.TransformerEncoderLayer(e, h, f, norm_first=True), (6, 2, 8),
        (2, 4, 6),
    ),
    "mlp_cifar10": (ref.MLPinPyTorch, (), (3, 3072)),
}


def all_variants() -> list[tuple[str, TorchVariant]]:
    return [(name, v) for name, variants in VARIANTS.items() for v in variants]


def reference_case(name: str, seed: int) -> tuple[nn.Module, dict[str, np.ndarray], np.ndarray]:
    """The reference module (float64, seeded weights), its state as arrays, and an input."""
    cls, args, shape = CASES[name]
    torch.manual_seed(seed)
    module = cls(*args).to(torch.float64)
    with torch.no_grad():  # default inits are small enough to hide some bugs in float64 noise
        for parameter_name, parameter in module.named_parameters():
            if name == "mlp_cifar10":  # N(0, 1) would saturate its softmax instead
                parameter.normal_(0.0, {"W1": 0.03, "W2": 0.1}.get(parameter_name, 0.5))
            else:
                parameter.add_(0.3 * torch.randn_like(parameter))
    state = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    x = np.random.default_rng(seed).standard_normal(shape)
    return module, state, x


def test_every_list_has_a_case_and_distinct_names() -> None:
    assert set(VARIANTS) == set(CASES)
    for variants in VARIANTS.values():
        names = [v.name for v in variants]
        assert len(names) == len(set(names))
        assert all(v.hint.endswith(".") for v in variants)


@SETTINGS
@given(SEEDS)
@pytest.mark.parametrize("name, variant", all_variants(), ids=lambda v: getattr(v, "name", v))
def test_each_variant_is_a_real_bug_that_is_recognised(
    name: str, variant: TorchVariant, seed: int
) -> None:
    module, state, x = reference_case(name, seed)
    args = CASES[name][1]
    expected = module(torch.as_tensor(x)).detach().numpy()
    wrong_module = variant.build(*args).to(torch.float64)
    if variant.by == "parameters":
        names = [n for n, _ in wrong_module.named_parameters()]
        assert set(names) < set(state)
        found = matching_module_variant(VARIANTS[name], None, state=state, parameter_names=names)
        assert found is variant
        assert "__init__" in unregistered_hint(list(state), names)
        wrong = wrong_module(torch.as_tensor(x)).detach().numpy()
    else:
        wrong = variant_output(variant, args, {}, state, [x])
        found = matching_module_variant(VARIANTS[name], wrong, args=args, state=state, inputs=[x])
        assert found is variant
    assert wrong.shape != expected.shape or not np.allclose(wrong, expected, rtol=1e-3)
    right = matching_module_variant(VARIANTS[name], expected, args=args, state=state, inputs=[x],
                                    parameter_names=list(state))
    assert right is None


def test_a_non_array_answer_matches_nothing() -> None:
    _, state, x = reference_case("conv2d", 0)
    args = CASES["conv2d"][1]
    assert matching_module_variant(VARIANTS["conv2d"], "oops", args=args, state=state,
                                   inputs=[x]) is None
    assert matching_module_variant(VARIANTS["conv2d"], None, args=args, state=state,
                                   inputs=[x]) is None


def test_a_variant_that_cannot_run_matches_nothing() -> None:
    _, state, x = reference_case("conv2d", 0)
    assert matching_module_variant(VARIANTS["conv2d"], np.zeros(3), args=(2, 3, 3, 2, 1),
                                   state=state, inputs=[np.zeros((1, 5))]) is None


def test_unregistered_layers_are_built_anew_on_every_call() -> None:
    variant = next(v for v in VARIANTS["self_attention"] if v.by == "parameters")
    module = variant.build(4).to(torch.float64)
    x = torch.randn(1, 3, 4, dtype=torch.float64)
    assert list(module.parameters()) == []
    assert not torch.allclose(module(x), module(x))


# --------------------------------------------------------------------------- accuracy


def accuracy_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One-hot y (12, 4) and probabilities (12, 4) with about half the rows right."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 12)
    logits = rng.standard_normal((12, 4))
    logits[: 6, :] += 5 * np.eye(4)[labels[:6]]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.eye(4)[labels], probabilities


@SETTINGS
@given(SEEDS)
@pytest.mark.parametrize("variant", FUNCTION_VARIANTS["accuracy"], ids=lambda v: v.name)
def test_accuracy_variants_are_real_and_recognised(variant: Any, seed: int) -> None:
    y, predicted = accuracy_batch(seed)
    right = ref.accuracy(torch.as_tensor(y), torch.as_tensor(predicted))
    wrong = variant.compute(y, predicted)
    assert not np.isclose(wrong, right)
    found = matching_variant(FUNCTION_VARIANTS["accuracy"], wrong, (y, predicted))
    assert found is not None and found.hint == variant.hint
    assert matching_variant(FUNCTION_VARIANTS["accuracy"], right, (y, predicted)) is None


def test_elementwise_accuracy_hand_example() -> None:
    """3 of 5 rows right over 4 classes: 0.6, but 16 of 20 one-hot entries agree: 0.8."""
    y = np.eye(4)[[0, 1, 2, 3, 0]]
    predicted = np.eye(4)[[0, 1, 2, 0, 1]] * 0.7 + 0.075
    assert ref.accuracy(torch.as_tensor(y), torch.as_tensor(predicted)) == pytest.approx(0.6)
    elementwise = FUNCTION_VARIANTS["accuracy"][0]
    assert elementwise.compute(y, predicted) == pytest.approx(0.8)
