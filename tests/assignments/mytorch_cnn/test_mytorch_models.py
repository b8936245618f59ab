"""assignments/mytorch-cnn/models.py: scanning MLPs and the CNN model against independent oracles.

Scanning MLPs are checked two ways: (1) against a direct, non-convolutional evaluation of the
scanned MLP on every 8-step window (for the distributed scan, the MLP whose weights have the
shared block structure, built with np.kron), and (2) against torch.nn.functional.conv1d.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pytest
import torch
import torch.nn.functional as F

from grader.registry import folder_module
from reference.numpy_layers import FloatArray
from tests.conftest import ROOT

MYTORCH = ROOT / "assignments/mytorch-cnn"
_models = folder_module(MYTORCH, "models")
GRADED_CNN_CONFIG = _models.GRADED_CNN_CONFIG
MLP_WEIGHT_SHAPES = _models.MLP_WEIGHT_SHAPES
CNNConfig = _models.CNNConfig
ConvParams = _models.ConvParams
LinearParams = _models.LinearParams
ReferenceCNN = _models.ReferenceCNN
cnn_input_gradient = _models.cnn_input_gradient
distributed_scanning_forward = _models.distributed_scanning_forward
distributed_scanning_weights = _models.distributed_scanning_weights
make_activation = _models.make_activation
random_cnn_params = _models.random_cnn_params
simple_scanning_forward = _models.simple_scanning_forward
simple_scanning_weights = _models.simple_scanning_weights

TORCH_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "identity": lambda t: t,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def t64(a: FloatArray, grad: bool = False) -> torch.Tensor:
    """A float64 torch copy of a (optionally requiring grad)."""
    return torch.tensor(np.array(a), dtype=torch.float64, requires_grad=grad)


def np_of(t: torch.Tensor | None) -> FloatArray:
    """A NumPy copy of a (gradient) tensor."""
    assert t is not None
    return t.detach().numpy().copy()


def mlp_weights(seed: int) -> list[FloatArray]:
    """Random w1 (192, 8), w2 (8, 16), w3 (16, 4)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for shape in MLP_WEIGHT_SHAPES]


def scan_input(seed: int) -> FloatArray:
    """Random x (1, 24, 128)."""
    return np.random.default_rng(seed).normal(size=(1, 24, 128))


def relu(a: FloatArray) -> FloatArray:
    """max(a, 0)."""
    return np.maximum(a, 0.0)


def scan_mlp_directly(x: FloatArray, w1: FloatArray, w2: FloatArray, w3: FloatArray) -> FloatArray:
    """Evaluate the 192 -> 8 -> 16 -> 4 MLP on every window x[0, :, 4t:4t+8], t = 0..30.

    The MLP input is v[tau * 24 + c] = x[0, c, 4t + tau]; returns (1, 4 * 31) ordered (o, t).
    """
    outputs = []
    for t in range(31):
        v = x[0, :, 4 * t : 4 * t + 8].T.reshape(-1)
        outputs.append(relu(relu(v @ w1) @ w2) @ w3)
    return np.stack(outputs, axis=1).reshape(1, -1)


def shared_block_mlp(w1: FloatArray, w2: FloatArray, w3: FloatArray) -> list[FloatArray]:
    """The full MLP a distributed scan computes: block-diagonal copies of the shared blocks."""
    blocks = [np.kron(np.eye(4), w1[:48, :2]), np.kron(np.eye(2), w2[:4, :8]), w3[:16, :4]]
    return [np.asarray(block, dtype=np.float64) for block in blocks]


def torch_scan(x: FloatArray, weights: Sequence[FloatArray], strides: Sequence[int]) -> FloatArray:
    """conv -> relu -> conv -> relu -> conv -> flatten with torch, zero biases."""
    h = t64(x)
    for i, (w, stride) in enumerate(zip(weights, strides, strict=True)):
        h = F.conv1d(h, t64(w), stride=stride)
        h = torch.relu(h) if i < 2 else h
    return np_of(h.reshape(h.shape[0], -1))


# --------------------------------------------------------------------------- scanning MLPs


def test_scanning_weights_follow_the_conventions() -> None:
    w1, w2, w3 = mlp_weights(0)
    simple = simple_scanning_weights(w1, w2, w3)
    expected = [
        w1.T.reshape(8, 8, 24).transpose(0, 2, 1),
        w2.T.reshape(16, 1, 8).transpose(0, 2, 1),
        w3.T.reshape(4, 1, 16).transpose(0, 2, 1),
    ]
    for got, want in zip(simple, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    dist = distributed_scanning_weights(w1, w2, w3)
    expected = [
        w1[:48, :2].T.reshape(2, 2, 24).transpose(0, 2, 1),
        w2[:4, :8].T.reshape(8, 2, 2).transpose(0, 2, 1),
        w3[:16, :4].T.reshape(4, 2, 8).transpose(0, 2, 1),
    ]
    for got, want in zip(dist, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_scanning_weights_hand_example() -> None:
    w1 = np.arange(1536.0).reshape(192, 8)  # w1[t * 24 + c, o] = 8 * (t * 24 + c) + o
    W = simple_scanning_weights(w1, np.zeros((8, 16)), np.zeros((16, 4)))[0]
    assert W[0, 0, 0] == 0.0 and W[0, 1, 0] == 8.0 and W[0, 0, 1] == 192.0
    assert W[3, 5, 7] == 8 * (7 * 24 + 5) + 3


def test_scanning_weights_reject_wrong_shapes() -> None:
    w1, w2, w3 = mlp_weights(0)
    with pytest.raises(ValueError):
        simple_scanning_weights(w1.T, w2, w3)
    with pytest.raises(ValueError):
        distributed_scanning_weights(w1, w2, w3[:8])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simple_scan_equals_the_mlp_on_every_window(seed: int) -> None:
    x, (w1, w2, w3) = scan_input(seed), mlp_weights(seed + 100)
    weights = simple_scanning_weights(w1, w2, w3)
    y = simple_scanning_forward(x, weights)
    assert y.shape == (1, 124)
    np.testing.assert_allclose(y, scan_mlp_directly(x, w1, w2, w3), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, torch_scan(x, weights, [4, 1, 1]), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distributed_scan_equals_the_shared_block_mlp(seed: int) -> None:
    x, (w1, w2, w3) = scan_input(seed), mlp_weights(seed + 100)
    weights = distributed_scanning_weights(w1, w2, w3)
    y = distributed_scanning_forward(x, weights)
    assert y.shape == (1, 124)
    full = shared_block_mlp(w1, w2, w3)
    np.testing.assert_allclose(y, scan_mlp_directly(x, *full), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        y, simple_scanning_forward(x, simple_scanning_weights(*full)), rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(y, torch_scan(x, weights, [2, 2, 1]), rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------- CNN helpers


def one_hot(indices: npt.ArrayLike, classes: int) -> FloatArray:
    """(batch,) integer labels -> (batch, classes) one-hot float64."""
    return np.eye(classes)[np.asarray(indices, dtype=np.int64)]


def torch_cnn_grads(
    conv_params: Sequence[ConvParams],
    config: CNNConfig,
    linear_params: LinearParams,
    x: FloatArray,
    labels: FloatArray,
) -> dict[str, list[FloatArray]]:
    """Torch forward + backward of the CNN with summed cross-entropy; raw (sum) gradients."""
    convs = [(t64(w, True), t64(b, True)) for w, b in conv_params]
    lw, lb = t64(linear_params[0], True), t64(linear_params[1], True)
    h = xt = t64(x, True)
    for (w, b), stride, name in zip(convs, config.strides, config.activations, strict=True):
        h = TORCH_ACTIVATIONS[name](F.conv1d(h, w, b, stride=stride))
    out = h.reshape(h.shape[0], -1) @ lw + lb
    F.cross_entropy(out, torch.tensor(labels.argmax(axis=1)), reduction="sum").backward()
    return {
        "output": [np_of(out)],
        "dx": [np_of(xt.grad)],
        "conv_dW": [np_of(w.grad) for w, _ in convs],
        "conv_db": [np_of(b.grad) for _, b in convs],
        "linear": [np_of(lw.grad), np_of(lb.grad)],
    }


def graded_problem(
    seed: int, batch: int = 2
) -> tuple[list[ConvParams], LinearParams, FloatArray, FloatArray]:
    """Random graded-config parameters, x (batch, 24, 128) and one-hot labels (batch, 10)."""
    rng = np.random.default_rng(seed)
    conv_params, linear_params = random_cnn_params(GRADED_CNN_CONFIG, rng)
    x = rng.normal(size=(batch, 24, 128))
    return conv_params, linear_params, x, one_hot(rng.integers(0, 10, batch), 10)


# --------------------------------------------------------------------------- CNN


def test_graded_config_shapes() -> None:
    config = GRADED_CNN_CONFIG
    assert config.conv_output_widths() == [124, 60, 30]
    assert config.conv_weight_shapes() == [(56, 24, 5), (28, 56, 6), (14, 28, 2)]
    assert config.linear_weight_shape() == (420, 10)
    assert config.activations == ("tanh", "relu", "sigmoid") and config.lr == 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_cnn_matches_torch(seed: int) -> None:
    conv_params, linear_params, x, labels = graded_problem(seed)
    model = ReferenceCNN.from_config(GRADED_CNN_CONFIG, conv_params, linear_params)
    want = torch_cnn_grads(conv_params, GRADED_CNN_CONFIG, linear_params, x, labels)
    np.testing.assert_allclose(model.forward(x), want["output"][0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.backward(labels), want["dx"][0], rtol=1e-9, atol=1e-12)
    got_grads, want_grads = model.conv_dW + model.conv_db, want["conv_dW"] + want["conv_db"]
    assert len(got_grads) == len(want_grads) == 6
    for got, exp in zip(got_grads, want_grads, strict=True):  # conv: sums over the batch
        np.testing.assert_allclose(got, exp, rtol=1e-9, atol=1e-12)
    # linear: averages over the batch of 2
    np.testing.assert_allclose(model.linear_dW, want["linear"][0] / 2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.linear_db, want["linear"][1] / 2, rtol=1e-9, atol=1e-12)


def test_cnn_step_matches_torch_sgd() -> None:
    conv_params, linear_params, x, labels = graded_problem(3)
    originals = [w.copy() for w, _ in conv_params]
    model = ReferenceCNN.from_config(GRADED_CNN_CONFIG, conv_params, linear_params)
    model.forward(x)
    model.backward(labels)
    model.step()
    want = torch_cnn_grads(conv_params, GRADED_CNN_CONFIG, linear_params, x, labels)
    lr = GRADED_CNN_CONFIG.lr
    for (w, b), dw, db, got_w, got_b in zip(
        conv_params, want["conv_dW"], want["conv_db"], model.conv_W, model.conv_b, strict=True
    ):
        np.testing.assert_allclose(got_w, w - lr * dw, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got_b, b - lr * db, rtol=1e-12, atol=1e-14)
    linear_w = linear_params[0] - lr * want["linear"][0] / 2
    np.testing.assert_allclose(model.linear_layer.W, linear_w, rtol=1e-12, atol=1e-14)
    linear_b = linear_params[1] - lr * want["linear"][1] / 2
    np.testing.assert_allclose(model.linear_layer.b, linear_b, rtol=1e-12, atol=1e-14)
    for (w, _), original in zip(conv_params, originals, strict=True):
        np.testing.assert_array_equal(w, original)  # the caller's arrays are untouched


def test_cnn_accepts_a_row_bias_and_zero_grads() -> None:
    conv_params, (lw, lb), x, labels = graded_problem(4)
    model = ReferenceCNN.from_config(GRADED_CNN_CONFIG, conv_params, (lw, lb.reshape(1, 10)))
    model.forward(x)
    dx = model.backward(labels)
    activations = ["tanh", "relu", "sigmoid"]
    expected = cnn_input_gradient(conv_params, [1, 2, 2], (lw, lb), activations, x, labels)
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-15)
    assert model.linear_db.shape == (1, 10)
    assert model.loss is not None and model.loss > 0
    model.zero_grads()
    assert not any(d.any() for d in [*model.conv_dW, *model.conv_db, model.linear_dW])


def test_cnn_rejects_bad_arguments() -> None:
    conv_params, linear_params, _, labels = graded_problem(5)
    with pytest.raises(ValueError):
        ReferenceCNN.from_config(GRADED_CNN_CONFIG, conv_params[:2], linear_params)
    with pytest.raises(ValueError):
        transposed = (linear_params[0].T, linear_params[1])
        ReferenceCNN.from_config(GRADED_CNN_CONFIG, conv_params, transposed)
    with pytest.raises(ValueError):
        make_activation("softplus")
    with pytest.raises(RuntimeError):
        ReferenceCNN.from_config(GRADED_CNN_CONFIG, conv_params, linear_params).backward(labels)


def test_small_cnn_gradients_match_finite_differences() -> None:
    config = CNNConfig(12, 2, (3, 2), (3, 2), (1, 2), 3, ("tanh", "sigmoid"), 0.1)
    rng = np.random.default_rng(6)
    conv_params, linear_params = random_cnn_params(config, rng)
    x, labels = rng.normal(size=(2, 2, 12)), one_hot(np.array([0, 2]), 3)
    model = ReferenceCNN.from_config(config, conv_params, linear_params)

    def loss() -> float:
        fresh = ReferenceCNN.from_config(config, conv_params, linear_params)
        fresh.forward(x)
        fresh.backward(labels)
        assert fresh.loss is not None
        return fresh.loss

    model.forward(x)
    dx = model.backward(labels)
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    for (w, b), dw, db in zip(conv_params, model.conv_dW, model.conv_db, strict=True):
        np.testing.assert_allclose(dw, numerical_grad(loss, w), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(db, numerical_grad(loss, b), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(
        model.linear_dW * 2, numerical_grad(loss, linear_params[0]), rtol=1e-6, atol=1e-8
    )


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
