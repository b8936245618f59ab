"""assignments/mytorch-cnn/conv2d.py proven three ways: a hand example, PyTorch as oracle, finite
differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.registry import folder_module
from tests.conftest import ROOT

MYTORCH = ROOT / "assignments/mytorch-cnn"
_conv2d = folder_module(MYTORCH, "conv2d")
conv2d_backward = _conv2d.conv2d_backward
conv2d_forward = _conv2d.conv2d_forward
conv2d_out_size = _conv2d.conv2d_out_size


SETTINGS = settings(max_examples=20, deadline=None, database=None)


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    kernel, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    width, height = draw(st.integers(kernel, 9)), draw(st.integers(kernel, 9))
    batch, in_c, out_c = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal((batch, in_c, width, height)),
            rng.standard_normal((out_c, in_c, kernel, kernel)), rng.standard_normal(out_c),
            stride)


def test_hand_example_single_channel_stride_2() -> None:
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    W = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
    y = conv2d_forward(x, W, np.array([0.5]), 2)
    # each 2x2 window: top-left minus bottom-right = -5, plus the bias
    assert y.shape == (1, 1, 2, 2) and np.allclose(y, -4.5)
    dx, dW, db = conv2d_backward(x, W, np.ones((1, 1, 2, 2)), 2)
    assert np.allclose(db, [4.0])
    sums = [[0 + 2 + 8 + 10, 1 + 3 + 9 + 11], [4 + 6 + 12 + 14, 5 + 7 + 13 + 15]]
    assert np.allclose(dW, [[sums]])
    assert np.allclose(dx[0, 0], np.tile(np.array([[1.0, 0.0], [0.0, -1.0]]), (2, 2)))


def test_out_size_and_bad_sizes() -> None:
    assert conv2d_out_size((60, 61), 5, 3) == (19, 19)
    with pytest.raises(ValueError):
        conv2d_out_size((3, 8), 4, 1)


@given(cases())
@SETTINGS
def test_matches_torch(case: tuple[np.ndarray, np.ndarray, np.ndarray, int]) -> None:
    x, W, b, stride = case
    xt = torch.tensor(x, requires_grad=True)
    Wt, bt = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    yt = F.conv2d(xt, Wt, bt, stride=stride)
    delta = np.random.default_rng(0).standard_normal(tuple(yt.shape))
    yt.backward(torch.tensor(delta))
    assert np.allclose(conv2d_forward(x, W, b, stride), yt.detach().numpy())
    dx, dW, db = conv2d_backward(x, W, delta, stride)
    assert xt.grad is not None and Wt.grad is not None and bt.grad is not None
    assert np.allclose(dx, xt.grad.numpy())
    assert np.allclose(dW, Wt.grad.numpy())
    assert np.allclose(db, bt.grad.numpy())


@given(cases())
@SETTINGS
def test_gradients_match_finite_differences(
    case: tuple[np.ndarray, np.ndarray, np.ndarray, int],
) -> None:
    x, W, b, stride = case
    delta = np.random.default_rng(1).standard_normal(conv2d_forward(x, W, b, stride).shape)
    dx, dW, _ = conv2d_backward(x, W, delta, stride)

    def loss() -> float:
        return float((conv2d_forward(x, W, b, stride) * delta).sum())

    for array, grad in ((x, dx), (W, dW)):
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            keep = array[index]
            array[index] = keep + 1e-6
            plus = loss()
            array[index] = keep - 1e-6
            minus = loss()
            array[index] = keep
            numeric[index] = (plus - minus) / 2e-6
        assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-6)
