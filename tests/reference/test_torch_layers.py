"""reference.torch_layers proven three ways: hand examples, torch built-ins as oracles
(forward and backward), and central-difference gradient checks (gradcheck, float64)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score
from torch import Tensor, nn
from torch.func import functional_call

from reference.torch_layers import (
    LSTM,
    RNN,
    Conv2d,
    FasterConv2d,
    LSTMLayer,
    MLPinPyTorch,
    MultiHeadAttention,
    RNNLayer,
    SelfAttention,
    TransformerEncoderLayer,
    accuracy,
    conv2d_out_size,
    encoder_layer_to_torch,
    lstm_to_torch,
    mha_to_torch,
    rnn_to_torch,
    self_attention_to_torch,
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: a second intra-op thread only adds hand-off cost (10x on a busy host)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


SETTINGS = settings(max_examples=15, deadline=None, database=None)
SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
D = torch.float64


def seeded(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def randn(generator: torch.Generator, *shape: int, grad: bool = True) -> Tensor:
    return torch.randn(*shape, generator=generator, dtype=D).requires_grad_(grad)


def set_params(module: nn.Module, **values: object) -> None:
    """Overwrite named parameters (dotted names) with the given values."""
    with torch.no_grad():
        for name, value in values.items():
            module.get_parameter(name.replace("__", ".")).copy_(torch.as_tensor(value, dtype=D))


def close(a: Tensor | None, b: Tensor | None, tol: float = 1e-10) -> bool:
    assert a is not None and b is not None
    return a.shape == b.shape and torch.allclose(a, b, rtol=tol, atol=tol)


def grads_of(module: nn.Module) -> dict[str, Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def assert_gradcheck(module: nn.Module, x: Tensor) -> None:
    """Central differences (torch.autograd.gradcheck) w.r.t. the input and every parameter."""
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in module.named_parameters())

    def run(x_: Tensor, *ps: Tensor) -> Tensor:
        out: Tensor = functional_call(module, dict(zip(names, ps, strict=True)), (x_,))
        return out

    assert torch.autograd.gradcheck(run, (x, *params), eps=1e-6, atol=1e-5, rtol=1e-4)


# --------------------------------------------------------------------------- hand examples


def test_conv_out_size() -> None:
    assert conv2d_out_size(28, 5) == 24
    assert conv2d_out_size(28, 3, 2, 1) == 14
    assert conv2d_out_size(7, 3, 2) == 3
    with pytest.raises(ValueError):
        conv2d_out_size(2, 5)
    with pytest.raises(ValueError):
        conv2d_out_size(5, 3, 0)


@pytest.mark.parametrize("cls", [Conv2d, FasterConv2d])
def test_conv_hand_example(cls: type[Conv2d]) -> None:
    x = torch.arange(9, dtype=D).reshape(1, 1, 3, 3)
    kernel = [[[[1.0, 0.0], [0.0, -1.0]]]]
    conv = cls(1, 1, 2).to(D)
    set_params(conv, weight=kernel, bias=[0.5])
    assert torch.equal(conv(x), torch.full((1, 1, 2, 2), -3.5, dtype=D))
    padded = cls(1, 1, 2, stride=2, padding=1).to(D)
    set_params(padded, weight=kernel, bias=[0.5])
    # windows start at (0, 0), (0, 2), (2, 0), (2, 2) of the zero-padded 5x5 input
    expected = torch.tensor([[0.5, -1.5], [-5.5, -3.5]], dtype=D)
    assert torch.equal(padded(x)[0, 0], expected)


def test_rnn_hand_example() -> None:
    layer = RNNLayer(1, 1).to(D)
    set_params(layer, W_xh__weight=[[1.0]], W_xh__bias=[0.0], W_hh__weight=[[0.5]],
               W_hh__bias=[0.0])
    out = layer(torch.tensor([[[1.0], [0.0]]], dtype=D))
    h1 = math.tanh(1.0)
    assert out.shape == (1, 2, 1)
    assert out.flatten().tolist() == pytest.approx([h1, math.tanh(0.5 * h1)])


def test_lstm_hand_example() -> None:
    """Zero weights: F = sigmoid(ln 3) = 0.75, I = O = 0.5, C~ = 0.6; C1 = 0.3, C2 = 0.525."""
    layer = LSTMLayer(1, 1).to(D)
    for gate in ("W_f", "W_i", "W_c", "W_o"):
        set_params(layer, **{f"{gate}__weight": [[0.0, 0.0]]})
    set_params(layer, W_f__bias=[math.log(3)], W_i__bias=[0.0], W_c__bias=[math.atanh(0.6)],
               W_o__bias=[0.0])
    out = layer(torch.tensor([[[2.0], [-1.0]]], dtype=D))
    assert out.flatten().tolist() == pytest.approx([0.5 * math.tanh(0.3),
                                                    0.5 * math.tanh(0.525)])


def identity_projections(module: nn.Module, size: int) -> None:
    for name, parameter in module.named_parameters():
        with torch.no_grad():
            parameter.copy_(torch.eye(size, dtype=D) if name.endswith("weight") else 0.0)


def test_self_attention_hand_example() -> None:
    layer = SelfAttention(2).to(D)
    identity_projections(layer, 2)
    a = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)
    out = layer(torch.eye(2, dtype=D)[None])
    assert torch.allclose(out[0], torch.tensor([[a, 1 - a], [1 - a, a]], dtype=D))


def test_multi_head_attention_hand_example() -> None:
    """Two heads of d_k = 1 on identity projections: head h attends with column h only."""
    layer = MultiHeadAttention(2, 2).to(D)
    identity_projections(layer, 2)
    e = math.e / (math.e + 1)
    out = layer(torch.eye(2, dtype=D)[None])
    assert torch.allclose(out[0], torch.tensor([[e, 0.5], [0.5, e]], dtype=D))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_hand_example(norm_first: bool) -> None:
    """Zero attention and feed-forward weights: only the LayerNorms act."""
    layer = TransformerEncoderLayer(2, 1, 3, norm_first=norm_first).to(D)
    for name, parameter in layer.named_parameters():
        if not name.startswith("norm"):
            with torch.no_grad():
                parameter.zero_()
    x = torch.tensor([[[1.0, 3.0]]], dtype=D)
    scale = 1 / math.sqrt(1 + 1e-5)
    once = torch.tensor([[[-scale, scale]]], dtype=D)
    expected = x if norm_first else F.layer_norm(once, (2,))
    assert torch.allclose(layer(x), expected)


def test_mlp_hand_example() -> None:
    mlp = MLPinPyTorch().to(D)
    assert [p.shape for p in mlp.parameters()] == [(3072, 256), (256,), (256, 10), (10,)]
    b2 = [0.0] * 10
    b2[3] = math.log(11)
    set_params(mlp, W1=torch.zeros(3072, 256), W2=torch.zeros(256, 10), b2=b2)
    probabilities = mlp(torch.ones(2, 3, 32, 32, dtype=D))
    expected = torch.full((2, 10), 0.05, dtype=D)
    expected[:, 3] = 0.55
    assert torch.allclose(probabilities, expected)


def test_accuracy_hand_example() -> None:
    y = torch.eye(3)[[0, 1, 2, 1]]
    predicted = torch.tensor([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    assert accuracy(y, predicted) == 0.75
    assert accuracy(torch.tensor([0, 1, 2, 1]), predicted) == 0.75


# --------------------------------------------------------------------------- torch oracles

CONV_CONFIGS = st.tuples(
    SEEDS, st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
    st.integers(1, 3), st.integers(0, 2), st.integers(0, 4), st.integers(0, 4),
)


@SETTINGS
@given(CONV_CONFIGS, st.sampled_from([Conv2d, FasterConv2d]))
def test_conv_matches_torch_conv2d(config: tuple[int, ...], cls: type[Conv2d]) -> None:
    seed, n, c_in, c_out, k, stride, padding, dh, dw = config
    g = seeded(seed)
    conv = cls(c_in, c_out, k, stride, padding).to(D)
    x = randn(g, n, c_in, max(k - 2 * padding, 1) + dh, max(k - 2 * padding, 1) + dw)
    out = conv(x)
    expected = F.conv2d(x, conv.weight, conv.bias, stride, padding)
    assert close(out, expected)
    delta = torch.randn(out.shape, generator=g, dtype=D)
    mine = torch.autograd.grad(out, (x, conv.weight, conv.bias), delta)
    theirs = torch.autograd.grad(expected, (x, conv.weight, conv.bias), delta)
    assert all(close(a, b) for a, b in zip(mine, theirs, strict=True))


SEQ_CONFIGS = st.tuples(SEEDS, st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
                        st.integers(1, 4))


def compare_recurrent(layer: nn.Module, oracle: nn.Module, x: Tensor, g: torch.Generator,
                      grad_map: Callable[[dict[str, Tensor]], dict[str, Tensor]]) -> None:
    """Outputs, input gradients and (mapped) parameter gradients of layer vs the torch oracle."""
    out, expected = layer(x), oracle(x)[0]
    assert close(out, expected)
    delta = torch.randn(out.shape, generator=g, dtype=D)
    dx = torch.autograd.grad(out, x, delta, retain_graph=True)[0]
    assert close(dx, torch.autograd.grad(expected, x, delta, retain_graph=True)[0])
    out.backward(delta)
    expected.backward(delta)
    mapped = grad_map(grads_of(oracle))
    mine = grads_of(layer)
    assert mapped.keys() == mine.keys()
    assert all(close(mine[name], mapped[name]) for name in mine)


@SETTINGS
@given(SEQ_CONFIGS)
def test_rnn_layer_matches_torch_rnn(config: tuple[int, ...]) -> None:
    seed, n, t, i, h = config
    g = seeded(seed)
    layer = RNNLayer(i, h).to(D)

    def grad_map(grads: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"W_xh.weight": grads["weight_ih_l0"], "W_xh.bias": grads["bias_ih_l0"],
                "W_hh.weight": grads["weight_hh_l0"], "W_hh.bias": grads["bias_hh_l0"]}

    compare_recurrent(layer, rnn_to_torch(layer), randn(g, n, t, i), g, grad_map)


@SETTINGS
@given(SEQ_CONFIGS)
def test_lstm_layer_matches_torch_lstm(config: tuple[int, ...]) -> None:
    """torch stacks the gates i, f, g, o; ours are W_f, W_i, W_c, W_o on [h, x]."""
    seed, n, t, i, h = config
    g = seeded(seed)
    layer = LSTMLayer(i, h).to(D)

    def grad_map(grads: dict[str, Tensor]) -> dict[str, Tensor]:
        mapped = {}
        for index, gate in enumerate(("W_i", "W_f", "W_c", "W_o")):
            rows = slice(index * h, (index + 1) * h)
            mapped[f"{gate}.weight"] = torch.cat(
                [grads["weight_hh_l0"][rows], grads["weight_ih_l0"][rows]], dim=1)
            mapped[f"{gate}.bias"] = grads["bias_ih_l0"][rows]
        return mapped

    compare_recurrent(layer, lstm_to_torch(layer), randn(g, n, t, i), g, grad_map)


@pytest.mark.parametrize("cls, oracle_layer", [(RNN, rnn_to_torch), (LSTM, lstm_to_torch)])
def test_sequence_classifiers_use_the_last_state(cls: type[RNN] | type[LSTM],
                                                 oracle_layer: Callable[..., nn.Module]) -> None:
    g = seeded(3)
    model = cls(3, 4, 2).to(D)
    layer = model.rnn if isinstance(model, RNN) else model.lstm
    x = randn(g, 2, 5, 3)
    expected = model.fc(oracle_layer(layer)(x)[0][:, -1])
    assert close(model(x), expected)


def compare_attention(layer: nn.Module, oracle: nn.MultiheadAttention, x: Tensor,
                      g: torch.Generator) -> None:
    out = layer(x)
    expected = oracle(x, x, x, need_weights=False)[0]
    assert close(out, expected)
    delta = torch.randn(out.shape, generator=g, dtype=D)
    assert close(torch.autograd.grad(out, x, delta)[0],
                 torch.autograd.grad(expected, x, delta)[0])


ATTENTION_CONFIGS = st.tuples(SEEDS, st.integers(1, 3), st.integers(1, 5), st.integers(1, 3),
                              st.integers(1, 3))


@SETTINGS
@given(ATTENTION_CONFIGS)
def test_attention_matches_torch_multihead_attention(config: tuple[int, ...]) -> None:
    seed, n, t, heads, d_k = config
    g = seeded(seed)
    embed = heads * d_k
    single = SelfAttention(embed).to(D)
    compare_attention(single, self_attention_to_torch(single), randn(g, n, t, embed), g)
    multi = MultiHeadAttention(embed, heads).to(D)
    compare_attention(multi, mha_to_torch(multi), randn(g, n, t, embed), g)


@SETTINGS
@given(ATTENTION_CONFIGS, st.integers(1, 6), st.booleans())
def test_encoder_layer_matches_torch(config: tuple[int, ...], ff: int, norm_first: bool) -> None:
    seed, n, t, heads, d_k = config
    g = seeded(seed)
    layer = TransformerEncoderLayer(heads * d_k, heads, ff, norm_first=norm_first).to(D)
    oracle = encoder_layer_to_torch(layer)
    x = randn(g, n, t, heads * d_k)
    out, expected = layer(x), oracle(x)
    assert close(out, expected)
    delta = torch.randn(out.shape, generator=g, dtype=D)
    assert close(torch.autograd.grad(out, x, delta)[0],
                 torch.autograd.grad(expected, x, delta)[0])


def test_mlp_matches_torch_sequential() -> None:
    g = seeded(5)
    mlp = MLPinPyTorch().to(D)
    oracle = nn.Sequential(nn.Flatten(), nn.Linear(3072, 256), nn.Sigmoid(), nn.Linear(256, 10),
                           nn.Softmax(dim=1)).to(D)
    with torch.no_grad():
        oracle[1].weight.copy_(mlp.W1.T)
        oracle[1].bias.copy_(mlp.b1)
        oracle[3].weight.copy_(mlp.W2.T)
        oracle[3].bias.copy_(mlp.b2)
    x = randn(g, 4, 3, 32, 32)
    out, expected = mlp(x), oracle(x)
    assert close(out, expected)
    delta = torch.randn(out.shape, generator=g, dtype=D)
    assert close(torch.autograd.grad(out, x, delta)[0],
                 torch.autograd.grad(expected, x, delta)[0])


@SETTINGS
@given(SEEDS, st.integers(1, 40), st.integers(2, 10))
def test_accuracy_matches_sklearn(seed: int, n: int, classes: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    scores = rng.random((n, classes))
    got = accuracy(torch.eye(classes)[labels], torch.tensor(scores))
    assert got == pytest.approx(accuracy_score(labels, scores.argmax(axis=1)))


# --------------------------------------------------------------------------- gradient checks

GRADCHECK = settings(max_examples=8, deadline=None, database=None)


@GRADCHECK
@given(st.tuples(SEEDS, st.integers(1, 2), st.integers(1, 2), st.integers(1, 2),
                 st.integers(1, 3), st.integers(1, 2), st.integers(0, 1)),
       st.sampled_from([Conv2d, FasterConv2d]))
def test_conv_gradcheck(config: tuple[int, ...], cls: type[Conv2d]) -> None:
    seed, n, c_in, c_out, k, stride, padding = config
    g = seeded(seed)
    conv = cls(c_in, c_out, k, stride, padding).to(D)
    assert_gradcheck(conv, randn(g, n, c_in, k + 2, k + 1))


@GRADCHECK
@given(SEEDS, st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["rnn", "lstm", "RNN", "LSTM"]))
def test_recurrent_gradcheck(seed: int, t: int, i: int, h: int, kind: str) -> None:
    g = seeded(seed)
    module: nn.Module = {"rnn": lambda: RNNLayer(i, h), "lstm": lambda: LSTMLayer(i, h),
                         "RNN": lambda: RNN(i, h, 2), "LSTM": lambda: LSTM(i, h, 2)}[kind]()
    assert_gradcheck(module.to(D), randn(g, 2, t, i))


@GRADCHECK
@given(SEEDS, st.integers(1, 4), st.integers(1, 2), st.integers(1, 2),
       st.sampled_from(["self", "multi", "post", "pre"]))
def test_attention_gradcheck(seed: int, t: int, heads: int, d_k: int, kind: str) -> None:
    g = seeded(seed)
    e = heads * d_k
    module: nn.Module = {
        "self": lambda: SelfAttention(e), "multi": lambda: MultiHeadAttention(e, heads),
        "post": lambda: TransformerEncoderLayer(e, heads, 3),
        "pre": lambda: TransformerEncoderLayer(e, heads, 3, norm_first=True),
    }[kind]()
    assert_gradcheck(module.to(D), randn(g, 2, t, e))


def test_mlp_gradcheck() -> None:
    """A slice of the MLP (the full W1 has 786k entries): same forward on 12 input features."""
    g = seeded(7)
    mlp = MLPinPyTorch(in_features=12, hidden=5, classes=4).to(D)
    assert_gradcheck(mlp, randn(g, 3, 12))
