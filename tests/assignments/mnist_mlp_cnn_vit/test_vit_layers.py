"""assignments/mnist-mlp-cnn-vit/layers.py proven three ways (a hand example, PyTorch's own
modules as the oracle, central differences), and every variant of its layer_bugs.py told
apart."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from grader.registry import folder_module
from sandbox import dropout_replay
from tests.conftest import ROOT

FOLDER = ROOT / "assignments/mnist-mlp-cnn-vit"
_layers = folder_module(FOLDER, "layers")
_bugs = folder_module(FOLDER, "layer_bugs")
ATTENTION, ENCODER, MULTI_HEAD = _bugs.ATTENTION, _bugs.ENCODER, _bugs.MULTI_HEAD
ModuleVariant = _bugs.ModuleVariant
CNN, MLP, ViT, patches = _layers.CNN, _layers.MLP, _layers.ViT, _layers.patches
MultiHeadAttention, SingleHeadAttention = _layers.MultiHeadAttention, _layers.SingleHeadAttention
PreLNEncoderLayer = _layers.PreLNEncoderLayer
PreLNEncoderLayerDropoutFirst = _layers.PreLNEncoderLayerDropoutFirst

SMALL = settings(max_examples=15, deadline=None)


def test_attention_by_hand() -> None:
    """Identity projections, two tokens: weights softmax([[1, 0], [0, 1]] / sqrt(2))."""
    layer = SingleHeadAttention(2, 2).double()
    with torch.no_grad():
        for linear in (layer.W_q, layer.W_k, layer.W_v):
            linear.weight.copy_(torch.eye(2))
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    a = math.exp(1 / math.sqrt(2)) / (math.exp(1 / math.sqrt(2)) + 1)
    expected = torch.tensor([[[a, 1 - a], [1 - a, a]]], dtype=torch.float64)
    assert torch.allclose(layer(x), expected)


def test_patches_by_hand() -> None:
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    got = patches(x, 2)
    assert got.shape == (1, 4, 4)
    assert got[0, 0].tolist() == [0, 1, 4, 5] and got[0, 3].tolist() == [10, 11, 14, 15]


def torch_attention(layer: MultiHeadAttention, heads: int,
                    w_o: torch.Tensor | None = None) -> nn.MultiheadAttention:
    """nn.MultiheadAttention with the heads' weights, and ``w_o`` (identity by default: the
    given multi-head code concatenates the heads, W^O is the encoder layer's)."""
    d_model = layer.heads[0].W_q.in_features
    oracle = nn.MultiheadAttention(d_model, heads, bias=False, batch_first=True).double()
    with torch.no_grad():
        for i, name in enumerate(("W_q", "W_k", "W_v")):
            rows = torch.cat([getattr(h, name).weight for h in layer.heads])
            oracle.in_proj_weight[i * d_model:(i + 1) * d_model].copy_(rows)
        oracle.out_proj.weight.copy_(torch.eye(d_model) if w_o is None else w_o)
    return oracle


@SMALL
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 4), st.integers(1, 4))
def test_multi_head_attention_matches_torch(batch: int, tokens: int, heads: int,
                                            d_head: int) -> None:
    torch.manual_seed(batch * 100 + tokens)
    layer = MultiHeadAttention(heads * d_head, heads).double()
    x = torch.randn(batch, tokens, heads * d_head, dtype=torch.float64)
    expected, _ = torch_attention(layer, heads)(x, x, x, need_weights=False)
    assert torch.allclose(layer(x), expected, atol=1e-10)


@SMALL
@given(st.integers(1, 3), st.integers(1, 6), st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 8))
def test_pre_ln_layer_matches_torch(batch: int, tokens: int, heads: int, d_head: int,
                                    d_ff: int) -> None:
    d_model = heads * d_head
    torch.manual_seed(tokens)
    layer = PreLNEncoderLayer(d_model, heads, d_ff).double()
    attention = torch_attention(layer.attention, heads, layer.W_o.weight)
    x = torch.randn(batch, tokens, d_model, dtype=torch.float64)
    h = x + attention(*(layer.ln1(x),) * 3, need_weights=False)[0]
    expected = h + layer.mlp[3](torch.relu(layer.mlp[0](layer.ln2(h))))
    assert torch.allclose(layer(x), expected, atol=1e-10)
    other = PreLNEncoderLayerDropoutFirst(d_model, heads, d_ff).double()
    other.load_state_dict(layer.state_dict())
    assert torch.allclose(other(x), expected, atol=1e-10)  # the same without dropout


@pytest.mark.parametrize("build", [
    lambda: SingleHeadAttention(5, 3), lambda: MultiHeadAttention(6, 2),
    lambda: PreLNEncoderLayer(4, 2, 6),
])
def test_gradients_match_central_differences(build: object) -> None:
    torch.manual_seed(0)
    layer = build().double()  # type: ignore[operator]
    x = torch.randn(2, 3, layer_width(layer), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def layer_width(layer: nn.Module) -> int:
    first = next(m for m in layer.modules() if isinstance(m, nn.Linear | nn.LayerNorm))
    return first.in_features if isinstance(first, nn.Linear) else first.normalized_shape[0]


def test_models_have_the_constrained_sizes() -> None:
    assert sum(p.numel() for p in CNN().parameters()) == 33_354
    assert MLP()(torch.zeros(2, 784)).shape == (2, 10)
    vit = ViT(d_model=32, d_ff=64)
    assert vit(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert sum(isinstance(m, SingleHeadAttention) for m in vit.modules()) == 48


@pytest.mark.parametrize(("variants", "reference_class", "args"), [
    (ATTENTION, SingleHeadAttention, (6, 3)),
    (MULTI_HEAD, MultiHeadAttention, (6, 2)),
    (ENCODER, PreLNEncoderLayer, (6, 2, 8)),
])
def test_every_variant_differs_from_the_reference(
    variants: list[ModuleVariant], reference_class: type[nn.Module], args: tuple[int, ...]
) -> None:
    """With weights off their defaults (as the grader draws them: ln1 and ln2 differ) and
    dropout active: each variant differs in eval mode or, with the same replayed dropout
    masks, in train mode (the dropout bugs)."""
    torch.manual_seed(0)
    reference = reference_class(*args, dropout=0.2).double()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x = torch.randn(2, 4, args[0], dtype=torch.float64)

    def outputs(module: nn.Module) -> list[torch.Tensor]:
        runs = []
        for train in (False, True):
            with dropout_replay.replaying(11):
                runs.append(module.train(train)(x))
        return runs

    expected = outputs(reference)
    for variant in variants:
        module = variant.build(*args, dropout=0.2).double()
        module.load_state_dict(reference.state_dict(), strict=False)  # no_output_projection
        got = outputs(module)
        assert not all(torch.allclose(g, e) for g, e in zip(got, expected, strict=True)), (
            variant.name)
        assert variant.hint
