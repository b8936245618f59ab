"""assignments/mytorch-cnn/bug_variants.py: every variant is a real bug, is recognised, and
the right answer is not."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.registry import folder_module
from reference.numpy_layers import (
    FloatArray,
    conv1d_backward,
    conv1d_forward,
    conv1d_out_width,
)
from tests.conftest import ROOT

MYTORCH = ROOT / "assignments/mytorch-cnn"
_models = folder_module(MYTORCH, "models")
_bug_variants = folder_module(MYTORCH, "bug_variants")
GRADED_CNN_CONFIG = _models.GRADED_CNN_CONFIG
MLP_WEIGHT_SHAPES = _models.MLP_WEIGHT_SHAPES
cnn_input_gradient = _models.cnn_input_gradient
distributed_scanning_forward = _models.distributed_scanning_forward
distributed_scanning_weights = _models.distributed_scanning_weights
random_cnn_params = _models.random_cnn_params
simple_scanning_forward = _models.simple_scanning_forward
simple_scanning_weights = _models.simple_scanning_weights
CNN_DX_VARIANTS = _bug_variants.CNN_DX_VARIANTS
CONV1D_DB_VARIANTS = _bug_variants.CONV1D_DB_VARIANTS
CONV1D_DW_VARIANTS = _bug_variants.CONV1D_DW_VARIANTS
CONV1D_DX_VARIANTS = _bug_variants.CONV1D_DX_VARIANTS
CONV1D_FORWARD_VARIANTS = _bug_variants.CONV1D_FORWARD_VARIANTS
DB_SHAPE_HINT = _bug_variants.DB_SHAPE_HINT
DISTRIBUTED_SCAN_VARIANTS = _bug_variants.DISTRIBUTED_SCAN_VARIANTS
SIMPLE_SCAN_VARIANTS = _bug_variants.SIMPLE_SCAN_VARIANTS
Variant = _bug_variants.Variant
conv1d_width_hint = _bug_variants.conv1d_width_hint
matching_variant = _bug_variants.matching_variant

SETTINGS = settings(max_examples=15, deadline=None, database=None)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)

OFF_BY_ONE = "Output width is off by one: out_width = (in_width - kernel_size) // stride + 1."
NO_STRIDE = "Output width ignores the stride: out_width = (in_width - kernel_size) // stride + 1."


def assert_real_recognised_bug(
    variants: Sequence[Variant], variant: Variant, reference: FloatArray, args: Sequence[object]
) -> None:
    """variant differs from the reference, is matched on its own output, and not on the truth."""
    wrong = variant.compute(*args)
    assert wrong.shape != reference.shape or not np.allclose(wrong, reference, rtol=1e-3)
    assert matching_variant(variants, wrong, args) is variant
    assert matching_variant(variants, reference, args) is None


def conv_args(seed: int, batch: int, kernel: int, stride: int, width: int) -> dict[str, object]:
    """Random x (batch, 2, width), W (3, 2, kernel), b (3,), delta and stride."""
    rng = np.random.default_rng(seed)
    out_w = conv1d_out_width(width, kernel, stride)
    return {
        "x": rng.normal(size=(batch, 2, width)),
        "W": rng.normal(size=(3, 2, kernel)),
        "b": rng.normal(size=3),
        "delta": rng.normal(size=(batch, 3, out_w)),
        "stride": stride,
    }


# Bugs are only observable with batch >= 2, kernel >= 2 and stride >= 2.
BUG_CONFIGS = st.builds(
    conv_args, SEEDS, st.integers(2, 3), st.integers(2, 4), st.integers(2, 3), st.integers(9, 20)
)


# --------------------------------------------------------------------------- Conv1D


@SETTINGS
@given(st.sampled_from(CONV1D_FORWARD_VARIANTS), BUG_CONFIGS)
def test_conv1d_forward_variants(variant: Variant, a: dict[str, FloatArray]) -> None:
    args = (a["x"], a["W"], a["b"], a["stride"])
    reference = conv1d_forward(a["x"], a["W"], a["b"], int(a["stride"]))
    assert_real_recognised_bug(CONV1D_FORWARD_VARIANTS, variant, reference, args)


@SETTINGS
@given(st.sampled_from(CONV1D_DX_VARIANTS), BUG_CONFIGS)
def test_conv1d_dx_variants(variant: Variant, a: dict[str, FloatArray]) -> None:
    args = (a["x"], a["W"], a["delta"], a["stride"])
    reference = conv1d_backward(a["x"], a["W"], a["delta"], int(a["stride"]))[0]
    assert_real_recognised_bug(CONV1D_DX_VARIANTS, variant, reference, args)


@SETTINGS
@given(st.sampled_from(CONV1D_DW_VARIANTS), BUG_CONFIGS)
def test_conv1d_dw_variants(variant: Variant, a: dict[str, FloatArray]) -> None:
    args = (a["x"], a["W"], a["delta"], a["stride"])
    reference = conv1d_backward(a["x"], a["W"], a["delta"], int(a["stride"]))[1]
    assert_real_recognised_bug(CONV1D_DW_VARIANTS, variant, reference, args)


@SETTINGS
@given(st.sampled_from(CONV1D_DB_VARIANTS), BUG_CONFIGS)
def test_conv1d_db_variants(variant: Variant, a: dict[str, FloatArray]) -> None:
    reference = conv1d_backward(a["x"], a["W"], a["delta"], int(a["stride"]))[2]
    assert_real_recognised_bug(CONV1D_DB_VARIANTS, variant, reference, (a["delta"],))


def test_conv1d_variant_hand_examples() -> None:
    x, W, b = np.array([[[1.0, 2, 3, 4, 5]]]), np.array([[[1.0, 2, -1]]]), np.array([0.5])
    flipped, missing_bias = (v.compute(x, W, b, 2) for v in CONV1D_FORWARD_VARIANTS)
    np.testing.assert_allclose(flipped, [[[6.5, 10.5]]])  # kernel [-1, 2, 1]
    np.testing.assert_allclose(missing_bias, [[[2.0, 6.0]]])
    delta = np.array([[[1.0, 2]]])
    stride_ignored = CONV1D_DX_VARIANTS[0].compute(x, W, delta, 2)
    np.testing.assert_allclose(stride_ignored, [[[1.0, 4, 3, -2, 0]]])
    db_first = CONV1D_DB_VARIANTS[1].compute(np.array([[[1.0, 2]], [[10.0, 20]]]))
    np.testing.assert_allclose(db_first, [3.0])


# --------------------------------------------------------------------------- widths


@pytest.mark.parametrize(
    ("in_width", "kernel", "stride", "got", "hint"),
    [
        (10, 3, 2, 4, None),
        (10, 3, 2, 8, NO_STRIDE),
        (10, 3, 2, 3, OFF_BY_ONE),
        (10, 3, 2, 5, OFF_BY_ONE),
        (10, 3, 2, 7, None),
        (5, 3, 2, 3, NO_STRIDE),  # also right + 1: the stride hint is checked first
        (10, 3, 1, 8, None),
        (10, 3, 1, 9, OFF_BY_ONE),
        (10, 3, 1, 7, OFF_BY_ONE),
        (128, 5, 1, 200, None),
    ],
)
def test_conv1d_width_hint(
    in_width: int, kernel: int, stride: int, got: int, hint: str | None
) -> None:
    assert conv1d_width_hint(in_width, kernel, stride, got) == hint


def test_db_shape_hint_text() -> None:
    assert DB_SHAPE_HINT == (
        "db must have shape (out_channel,): sum delta over axis 0 (batch) and axis 2 (width)."
    )


# --------------------------------------------------------------------------- scanning MLPs


def scan_args(seed: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Random x (1, 24, 128), w1 (192, 8), w2 (8, 16), w3 (16, 4)."""
    rng = np.random.default_rng(seed)
    w1, w2, w3 = (rng.normal(size=shape) for shape in MLP_WEIGHT_SHAPES)
    return rng.normal(size=(1, 24, 128)), w1, w2, w3


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("variant", SIMPLE_SCAN_VARIANTS, ids=lambda v: v.name)
def test_simple_scan_variants(variant: Variant, seed: int) -> None:
    x, w1, w2, w3 = scan_args(seed)
    reference = simple_scanning_forward(x, simple_scanning_weights(w1, w2, w3))
    assert_real_recognised_bug(SIMPLE_SCAN_VARIANTS, variant, reference, (x, w1, w2, w3))


def test_simple_scan_weight_order_is_harmless_for_one_wide_kernels() -> None:
    _, w1, w2, w3 = scan_args(0)
    weights = simple_scanning_weights(w1, w2, w3)
    np.testing.assert_array_equal(w2.T.reshape(16, 8, 1), weights[1])
    np.testing.assert_array_equal(w3.T.reshape(4, 16, 1), weights[2])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("variant", DISTRIBUTED_SCAN_VARIANTS, ids=lambda v: v.name)
def test_distributed_scan_variants(variant: Variant, seed: int) -> None:
    x, w1, w2, w3 = scan_args(seed)
    reference = distributed_scanning_forward(x, distributed_scanning_weights(w1, w2, w3))
    assert_real_recognised_bug(DISTRIBUTED_SCAN_VARIANTS, variant, reference, (x, w1, w2, w3))


# --------------------------------------------------------------------------- CNN


@pytest.mark.parametrize("variant", CNN_DX_VARIANTS, ids=lambda v: v.name)
def test_cnn_dx_variants(variant: Variant) -> None:
    rng = np.random.default_rng(7)
    conv_params, linear_params = random_cnn_params(GRADED_CNN_CONFIG, rng)
    x, labels = rng.normal(size=(2, 24, 128)), np.eye(10)[[3, 8]]
    config = GRADED_CNN_CONFIG
    args = (conv_params, config.strides, linear_params, config.activations, x, labels)
    reference = cnn_input_gradient(*args)
    assert_real_recognised_bug(CNN_DX_VARIANTS, variant, reference, args)


# --------------------------------------------------------------------------- hints and matching

EXPECTED_HINTS = {
    "flipped_kernel": "Your output matches a convolution with the kernel flipped: Conv1D computes "
    "a cross-correlation, y[n, o, t] = sum over c, k of W[o, c, k] * x[n, c, t*stride + k] + b[o].",
    "missing_bias": "Your output matches the result without the bias: add b[o] to every output "
    "position.",
    "dx_stride_ignored": "dx matches a backward pass that ignores the stride: delta[:, :, t] flows "
    "back to input positions t*stride + k.",
    "dx_kernel_flipped": "dx matches a backward pass with the kernel flipped.",
    "dw_averaged": "dW matches the batch average: this homework wants the sum over the batch "
    "(unaveraged gradients).",
    "dw_stride_ignored": "dW matches a backward pass that ignores the stride.",
    "db_averaged": "db matches the batch average: sum delta over the batch and width axes without "
    "dividing.",
    "db_first_sample": "db uses only the first sample: sum delta over axis 0 (batch) and axis 2 "
    "(width).",
}

ALL_LISTS = [
    CONV1D_FORWARD_VARIANTS,
    CONV1D_DX_VARIANTS,
    CONV1D_DW_VARIANTS,
    CONV1D_DB_VARIANTS,
    SIMPLE_SCAN_VARIANTS,
    DISTRIBUTED_SCAN_VARIANTS,
    CNN_DX_VARIANTS,
]


def test_variant_names_and_hints() -> None:
    by_name = {v.name: v for variants in ALL_LISTS for v in variants}
    assert len(by_name) == sum(len(variants) for variants in ALL_LISTS) == 14
    for name, hint in EXPECTED_HINTS.items():
        assert by_name[name].hint == hint
    assert "activations[i].derivative()" in by_name["cnn_dx_no_activation_derivative"].hint
    assert "first kernel_size * in_channel rows" in by_name["dist_wrong_slice"].hint
    assert "(out, kernel, in_channel)" in by_name["scan_weight_order"].hint
    assert "(out, kernel, in_channel)" in by_name["dist_weight_order"].hint
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_name["missing_bias"].name = "other"  # type: ignore[misc]


def constant(value: FloatArray) -> Callable[..., FloatArray]:
    """A compute function that ignores its arguments."""
    return lambda *_: value


def failing(*_: object) -> FloatArray:
    """A compute function that always raises."""
    raise ZeroDivisionError


def test_matching_variant_rules() -> None:
    ones, twos = np.ones((2, 3)), 2 * np.ones((2, 3))
    broken, first = Variant("broken", "", failing), Variant("first", "", constant(ones))
    second, two = Variant("second", "", constant(ones)), Variant("2", "", constant(twos))
    variants = [broken, first, second, two]
    assert matching_variant(variants, ones, ()) is first
    assert matching_variant(variants, ones + 1e-9, ()) is first
    assert matching_variant(variants, ones + 1e-3, ()) is None
    assert matching_variant(variants, ones + 1e-3, (), rtol=1e-2) is first
    assert matching_variant(variants, twos.tolist(), ()) is two
    assert matching_variant(variants, np.ones((3, 2)), ()) is None
    assert matching_variant(variants, np.ones(6), ()) is None
    assert matching_variant(variants, "not an array", ()) is None
    assert matching_variant(variants, None, ()) is None
    assert matching_variant([], ones, ()) is None
