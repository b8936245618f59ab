"""reference.numpy_layers proven three ways: hand examples, PyTorch oracle, finite differences."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.numpy_layers import (
    Activation,
    Conv1D,
    Flatten,
    FloatArray,
    Identity,
    Linear,
    ReLU,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    conv1d_backward,
    conv1d_db,
    conv1d_dw,
    conv1d_dx,
    conv1d_forward,
    conv1d_out_width,
)

SETTINGS = settings(max_examples=25, deadline=None, database=None)
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def numerical_grad(f: Callable[[], float], arr: FloatArray, eps: float = 1e-6) -> FloatArray:
    """Central differences of the scalar f() with respect to every entry of arr (in place)."""
    grad = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        plus = f()
        arr[idx] = old - eps
        minus = f()
        arr[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def t64(a: FloatArray, grad: bool = False) -> torch.Tensor:
    """A float64 torch copy of a (optionally requiring grad)."""
    return torch.tensor(np.array(a), dtype=torch.float64, requires_grad=grad)


def np_of(t: torch.Tensor | None) -> FloatArray:
    """A NumPy copy of a (gradient) tensor."""
    assert t is not None
    return t.detach().numpy().copy()


@dataclass(frozen=True)
class ConvCase:
    """Random Conv1D problem: x (batch, in, width), W (out, in, k), b (out,), delta (out shape)."""

    x: FloatArray
    W: FloatArray
    b: FloatArray
    delta: FloatArray
    stride: int


@st.composite
def conv_cases(draw: st.DrawFn) -> ConvCase:
    """Hypothesis strategy over (batch, channels, width, kernel, stride)."""
    batch, in_c, out_c = (draw(st.integers(1, 3)) for _ in range(3))
    kernel, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    width = draw(st.integers(kernel, kernel + 9))
    rng = np.random.default_rng(draw(SEEDS))
    out_w = conv1d_out_width(width, kernel, stride)
    return ConvCase(
        x=rng.normal(size=(batch, in_c, width)),
        W=rng.normal(size=(out_c, in_c, kernel)),
        b=rng.normal(size=out_c),
        delta=rng.normal(size=(batch, out_c, out_w)),
        stride=stride,
    )


# --------------------------------------------------------------------------- conv1d: by hand


@pytest.mark.parametrize(
    ("in_width", "kernel", "stride", "expected"),
    [(5, 3, 2, 2), (6, 3, 2, 2), (128, 8, 4, 31), (128, 5, 1, 124), (124, 6, 2, 60), (4, 4, 3, 1)],
)
def test_out_width(in_width: int, kernel: int, stride: int, expected: int) -> None:
    assert conv1d_out_width(in_width, kernel, stride) == expected


@pytest.mark.parametrize(("in_width", "kernel", "stride"), [(3, 4, 1), (5, 0, 1), (5, 2, 0)])
def test_out_width_rejects_bad_sizes(in_width: int, kernel: int, stride: int) -> None:
    with pytest.raises(ValueError):
        conv1d_out_width(in_width, kernel, stride)


def test_conv1d_hand_example_single_channel_stride_2() -> None:
    x = np.array([[[1.0, 2, 3, 4, 5]]])
    W = np.array([[[1.0, 2, -1]]])
    b = np.array([0.5])
    np.testing.assert_allclose(conv1d_forward(x, W, b, 2), [[[2.5, 6.5]]])
    dx, dW, db = conv1d_backward(x, W, np.array([[[1.0, 2]]]), 2)
    np.testing.assert_allclose(dx, [[[1.0, 2, 1, 4, -2]]])
    np.testing.assert_allclose(dW, [[[7.0, 10, 13]]])
    np.testing.assert_allclose(db, [3.0])


def test_conv1d_hand_example_gradients_are_batch_sums() -> None:
    x = np.array([[[1.0, 2, 3, 4, 5]], [[1.0, 2, 3, 4, 5]]])
    delta = np.array([[[1.0, 2]], [[1.0, 2]]])
    _, dW, db = conv1d_backward(x, np.array([[[1.0, 2, -1]]]), delta, 2)
    np.testing.assert_allclose(dW, [[[14.0, 20, 26]]])
    np.testing.assert_allclose(db, [6.0])


def test_conv1d_hand_example_multichannel() -> None:
    x = np.array([[[1.0, 2, 3], [0.0, 1, -1]]])
    W = np.array([[[1.0, 1], [0, 2]], [[0.0, 0], [1, -1]]])
    y = conv1d_forward(x, W, np.array([0.0, 10.0]), 1)
    np.testing.assert_allclose(y, [[[5.0, 3], [9, 12]]])


def test_conv1d_dx_leaves_unreached_positions_zero() -> None:
    x = np.ones((1, 1, 6))  # k=3, stride 2: windows at 0..2 and 2..4, position 5 unused
    dx, _, _ = conv1d_backward(x, np.array([[[1.0, 1, 1]]]), np.array([[[1.0, 1]]]), 2)
    np.testing.assert_allclose(dx, [[[1.0, 1, 2, 1, 1, 0]]])


def test_conv1d_rejects_mismatched_shapes() -> None:
    x, W = np.zeros((1, 2, 5)), np.zeros((1, 3, 2))
    with pytest.raises(ValueError):
        conv1d_forward(x, W, np.zeros(1), 1)
    with pytest.raises(ValueError):
        conv1d_backward(np.zeros((1, 3, 5)), W, np.zeros((1, 1, 3)), 1)
    with pytest.raises(ValueError):
        conv1d_dx(np.zeros((1, 1, 5)), W, 2, 5)
    with pytest.raises(ValueError):
        conv1d_dw(np.zeros((1, 3, 5)), np.zeros((1, 1, 3)), 2, 1)


def test_conv1d_class_interface() -> None:
    conv = Conv1D(2, 3, 4, 2)
    assert conv.W.shape == conv.dW.shape == (3, 2, 4)
    assert conv.b.shape == conv.db.shape == (3,)
    assert not conv.W.any() and not conv.b.any() and not conv.dW.any()
    seeded = Conv1D(2, 3, 4, 2, rng=np.random.default_rng(0))
    assert seeded.W.std() > 0 and not seeded.b.any()
    with pytest.raises(RuntimeError):
        seeded.backward(np.zeros((1, 3, 2)))


# --------------------------------------------------------------------------- conv1d: torch, fd


@SETTINGS
@given(conv_cases())
def test_conv1d_matches_torch(case: ConvCase) -> None:
    x, W, b = t64(case.x, True), t64(case.W, True), t64(case.b, True)
    y = F.conv1d(x, W, b, stride=case.stride)
    (y * t64(case.delta)).sum().backward()
    conv = Conv1D(case.W.shape[1], case.W.shape[0], case.W.shape[2], case.stride)
    conv.W, conv.b = case.W.copy(), case.b.copy()
    np.testing.assert_allclose(conv(case.x), np_of(y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.backward(case.delta), np_of(x.grad), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.dW, np_of(W.grad), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.db, np_of(b.grad), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(conv_cases())
def test_conv1d_gradients_match_finite_differences(case: ConvCase) -> None:
    x, W, b = case.x.copy(), case.W.copy(), case.b.copy()

    def loss() -> float:
        return float((conv1d_forward(x, W, b, case.stride) * case.delta).sum())

    dx, dW, db = conv1d_backward(x, W, case.delta, case.stride)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dW, numerical_grad(loss, W), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(conv1d_db(case.delta), db)


# --------------------------------------------------------------------------- Flatten


def test_flatten_hand_example_and_roundtrip() -> None:
    flatten = Flatten()
    x = np.arange(12.0).reshape(2, 2, 3)
    y = flatten(x)
    np.testing.assert_array_equal(y, [[0.0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    np.testing.assert_array_equal(flatten.backward(y), x)
    with pytest.raises(RuntimeError):
        Flatten().backward(y)


# --------------------------------------------------------------------------- activations

ACTIVATION_CASES: list[tuple[type[Activation], Callable[[torch.Tensor], torch.Tensor]]] = [
    (Identity, lambda t: t),
    (Sigmoid, torch.sigmoid),
    (Tanh, torch.tanh),
    (ReLU, torch.relu),
]


@pytest.mark.parametrize(
    ("cls", "x", "state", "derivative"),
    [
        (Identity, [-2.0, 0.0, 3.0], [-2.0, 0.0, 3.0], [1.0, 1.0, 1.0]),
        (Sigmoid, [0.0, np.log(3.0)], [0.5, 0.75], [0.25, 0.1875]),
        (Tanh, [0.0, np.log(2.0)], [0.0, 0.6], [1.0, 0.64]),
        (ReLU, [-1.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0]),
    ],
)
def test_activation_hand_examples(
    cls: type[Activation], x: list[float], state: list[float], derivative: list[float]
) -> None:
    act = cls()
    np.testing.assert_allclose(act(np.array(x)), state, atol=1e-15)
    np.testing.assert_allclose(act.state, state, atol=1e-15)
    np.testing.assert_allclose(act.derivative(), derivative, atol=1e-15)


def test_sigmoid_is_stable_for_large_inputs() -> None:
    act = Sigmoid()
    np.testing.assert_allclose(act(np.array([-1000.0, 1000.0])), [0.0, 1.0])
    np.testing.assert_allclose(act.derivative(), [0.0, 0.0])


@SETTINGS
@given(st.sampled_from(ACTIVATION_CASES), st.integers(1, 4), st.integers(1, 6), SEEDS)
def test_activations_match_torch(
    case: tuple[type[Activation], Callable[[torch.Tensor], torch.Tensor]],
    batch: int,
    width: int,
    seed: int,
) -> None:
    cls, torch_fn = case
    x = np.random.default_rng(seed).normal(size=(batch, 2, width))
    xt = t64(x, True)
    yt = torch_fn(xt)
    yt.sum().backward()
    act = cls()
    np.testing.assert_allclose(act(x), np_of(yt), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(act.derivative(), np_of(xt.grad), rtol=1e-12, atol=1e-14)


@SETTINGS
@given(st.sampled_from([Identity, Sigmoid, Tanh, ReLU]), st.integers(1, 5), SEEDS)
def test_activation_derivatives_match_finite_differences(
    cls: type[Activation], width: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(2, width))
    x = np.sign(z) * (0.1 + np.abs(z))  # away from ReLU's kink
    weights = rng.normal(size=x.shape)
    act = cls()

    def loss() -> float:
        return float((cls()(x) * weights).sum())

    act(x)
    np.testing.assert_allclose(
        act.derivative() * weights, numerical_grad(loss, x), rtol=1e-6, atol=1e-8
    )


# --------------------------------------------------------------------------- Linear


def test_linear_hand_example() -> None:
    linear = Linear(2, 3)
    assert linear.W.shape == (2, 3) and linear.b.shape == (1, 3)
    linear.W = np.array([[1.0, 0, 1], [0, 1, 1]])
    linear.b = np.array([[0.5, -0.5, 0]])
    y = linear(np.array([[1.0, 2], [3, 4]]))
    np.testing.assert_allclose(y, [[1.5, 1.5, 3], [3.5, 3.5, 7]])
    dx = linear.backward(np.array([[1.0, 0, 0], [0, 1, 0]]))
    np.testing.assert_allclose(dx, [[1.0, 0], [0, 1]])
    np.testing.assert_allclose(linear.dW, [[0.5, 1.5, 0], [1, 2, 0]])
    np.testing.assert_allclose(linear.db, [[0.5, 0.5, 0]])


def test_linear_keeps_a_flat_bias_shape() -> None:
    linear = Linear(2, 3, rng=np.random.default_rng(1))
    linear.b = np.array([1.0, 2.0, 3.0])
    linear(np.ones((4, 2)))
    linear.backward(np.ones((4, 3)))
    np.testing.assert_allclose(linear.db, [1.0, 1.0, 1.0])
    with pytest.raises(RuntimeError):
        Linear(2, 3).backward(np.ones((1, 3)))


def linear_case(
    seed: int, batch: int, n_in: int, n_out: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Random x (batch, in), W (in, out), b (1, out), delta (batch, out)."""
    rng = np.random.default_rng(seed)
    shapes = [(batch, n_in), (n_in, n_out), (1, n_out), (batch, n_out)]
    x, W, b, delta = (rng.normal(size=shape) for shape in shapes)
    return x, W, b, delta


@SETTINGS
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6), SEEDS)
def test_linear_matches_torch_with_averaged_gradients(
    batch: int, n_in: int, n_out: int, seed: int
) -> None:
    x, W, b, delta = linear_case(seed, batch, n_in, n_out)
    xt, Wt, bt = t64(x, True), t64(W, True), t64(b, True)
    yt = xt @ Wt + bt
    (yt * t64(delta)).sum().backward()
    linear = Linear(n_in, n_out)
    linear.W, linear.b = W, b
    np.testing.assert_allclose(linear(x), np_of(yt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(linear.backward(delta), np_of(xt.grad), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(linear.dW, np_of(Wt.grad) / batch, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(linear.db, np_of(bt.grad) / batch, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4), SEEDS)
def test_linear_gradients_match_finite_differences(
    batch: int, n_in: int, n_out: int, seed: int
) -> None:
    x, W, b, delta = linear_case(seed, batch, n_in, n_out)
    linear = Linear(n_in, n_out)
    linear.W, linear.b = W, b

    def loss() -> float:
        return float(((x @ W + b) * delta).sum())

    linear(x)
    dx = linear.backward(delta)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(linear.dW * batch, numerical_grad(loss, W), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(linear.db * batch, numerical_grad(loss, b), rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- SoftmaxCrossEntropy


def one_hot(indices: npt.ArrayLike, classes: int) -> FloatArray:
    """(batch,) integer labels -> (batch, classes) one-hot float64."""
    return np.eye(classes)[np.asarray(indices, dtype=np.int64)]


def test_softmax_cross_entropy_hand_example() -> None:
    ce = SoftmaxCrossEntropy()
    loss = ce(np.array([[0.0, 0.0], [np.log(3.0), 0.0]]), one_hot([0, 1], 2))
    np.testing.assert_allclose(loss, [np.log(2.0), np.log(4.0)])
    np.testing.assert_allclose(ce.derivative(), [[-0.5, 0.5], [0.75, -0.75]])


def test_softmax_cross_entropy_is_stable_for_large_logits() -> None:
    ce = SoftmaxCrossEntropy()
    loss = ce(np.array([[1000.0, 0.0], [1000.0, 0.0]]), one_hot([0, 1], 2))
    np.testing.assert_allclose(loss, [0.0, 1000.0])
    np.testing.assert_allclose(ce.derivative(), [[0.0, 0.0], [1.0, -1.0]])


@SETTINGS
@given(st.integers(1, 5), st.integers(2, 6), SEEDS)
def test_softmax_cross_entropy_matches_torch(batch: int, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, labels = 3 * rng.normal(size=(batch, classes)), rng.integers(0, classes, batch)
    ce = SoftmaxCrossEntropy()
    loss = ce(x, one_hot(labels, classes))
    xt = t64(x, True)
    lt = F.cross_entropy(xt, torch.tensor(labels), reduction="none")
    lt.sum().backward()
    np.testing.assert_allclose(loss, np_of(lt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ce.derivative(), np_of(xt.grad), rtol=1e-12, atol=1e-12)
    xm = t64(x, True)
    F.cross_entropy(xm, torch.tensor(labels), reduction="mean").backward()
    np.testing.assert_allclose(ce.derivative() / batch, np_of(xm.grad), rtol=1e-12, atol=1e-12)


@SETTINGS
@given(st.integers(1, 4), st.integers(2, 5), SEEDS)
def test_softmax_cross_entropy_matches_finite_differences(
    batch: int, classes: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(batch, classes)), one_hot(rng.integers(0, classes, batch), classes)
    ce = SoftmaxCrossEntropy()

    def loss() -> float:
        return float(SoftmaxCrossEntropy()(x, y).sum())

    ce(x, y)
    np.testing.assert_allclose(ce.derivative(), numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
