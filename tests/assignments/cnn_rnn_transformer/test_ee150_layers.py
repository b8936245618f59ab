"""assignments/cnn-rnn-transformer/layers.py against PyTorch's own layers with copied
weights, its options against each other, and every variant of its layer_bugs.py as a real
difference."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grader.registry import folder_module
from tests.conftest import ROOT

FOLDER = ROOT / "assignments/cnn-rnn-transformer"
ref = folder_module(FOLDER, "layers")
bugs = folder_module(FOLDER, "layer_bugs")

torch.manual_seed(0)


def test_rnn_layer_is_torchs_rnn_plus_an_output_layer() -> None:
    layer = ref.RNNLayer(3, 5, 2).double()
    oracle = nn.RNN(3, 5, batch_first=True).double()
    with torch.no_grad():
        oracle.weight_ih_l0.copy_(layer.W_xh.T)
        oracle.weight_hh_l0.copy_(layer.W_hh.T)
        oracle.bias_ih_l0.copy_(layer.b_h)
        oracle.bias_hh_l0.zero_()
        layer.b_h.normal_()
        oracle.bias_ih_l0.copy_(layer.b_h)
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    states, _ = oracle(x)
    assert torch.allclose(layer(x), states @ layer.W_hy + layer.b_y)


def test_lstm_layer_is_torchs_lstm_plus_an_output_layer() -> None:
    layer = ref.LSTMLayer(3, 5, 2).double()
    with torch.no_grad():
        for gate in ref.GATES:
            getattr(layer, f"b_{gate}").normal_()
    oracle = nn.LSTM(3, 5, batch_first=True).double()
    order = ("i", "f", "c", "o")  # torch stacks the gates as input, forget, cell, output
    with torch.no_grad():
        oracle.weight_ih_l0.copy_(torch.cat([getattr(layer, f"W_x{g}").T for g in order]))
        oracle.weight_hh_l0.copy_(torch.cat([getattr(layer, f"W_h{g}").T for g in order]))
        oracle.bias_ih_l0.copy_(torch.cat([getattr(layer, f"b_{g}") for g in order]))
        oracle.bias_hh_l0.zero_()
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    states, _ = oracle(x)
    assert torch.allclose(layer(x), states @ layer.W_hy + layer.b_y)


@pytest.mark.parametrize("cls", [ref.RNNLayer, ref.LSTMLayer])
def test_column_and_softmax_options_are_the_same_function(cls: type[nn.Module]) -> None:
    rows, columns = cls(3, 5, 2).double(), cls(3, 5, 2, column=True).double()
    with torch.no_grad():
        for name, param in rows.named_parameters():
            getattr(columns, name).copy_(param.T if param.ndim == 2 else param)
    softmax = cls(3, 5, 2, softmax=True).double()
    softmax.load_state_dict(rows.state_dict())
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    assert torch.allclose(rows(x), columns(x))
    assert torch.allclose(torch.softmax(rows(x), dim=-1), softmax(x))


def test_attention_is_torchs_multihead_attention() -> None:
    mine = ref.MultiHeadAttention(6, 3).double()
    oracle = nn.MultiheadAttention(6, 3, batch_first=True).double()
    with torch.no_grad():
        oracle.in_proj_weight.copy_(torch.cat([mine.W_q.weight, mine.W_k.weight,
                                               mine.W_v.weight]))
        oracle.in_proj_bias.copy_(torch.cat([mine.W_q.bias, mine.W_k.bias, mine.W_v.bias]))
        oracle.out_proj.load_state_dict(mine.W_o.state_dict())
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    assert torch.allclose(mine(x), oracle(x, x, x, need_weights=False)[0])
    single = ref.SelfAttention(6).double()
    one_head = ref.MultiHeadAttention(6, 1).double()
    one_head.load_state_dict(single.state_dict(), strict=False)
    with torch.no_grad():
        one_head.W_o.weight.copy_(torch.eye(6))
        one_head.W_o.bias.zero_()
    assert torch.allclose(single(x), one_head(x))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_is_torchs_encoder_layer_plus_an_output_layer(norm_first: bool) -> None:
    mine = ref.TransformerEncoder(6, 2, 10, 3, norm_first=norm_first).double()
    oracle = nn.TransformerEncoderLayer(6, 2, 10, dropout=0.0, batch_first=True,
                                        norm_first=norm_first).double()
    attention = mine.attention
    with torch.no_grad():
        oracle.self_attn.in_proj_weight.copy_(torch.cat(
            [attention.W_q.weight, attention.W_k.weight, attention.W_v.weight]))
        oracle.self_attn.in_proj_bias.copy_(torch.cat(
            [attention.W_q.bias, attention.W_k.bias, attention.W_v.bias]))
        oracle.self_attn.out_proj.load_state_dict(attention.W_o.state_dict())
        oracle.linear1.load_state_dict(mine.ff[0].state_dict())
        oracle.linear2.load_state_dict(mine.ff[2].state_dict())
        oracle.norm1.load_state_dict(mine.norm1.state_dict())
        oracle.norm2.load_state_dict(mine.norm2.state_dict())
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    assert torch.allclose(mine(x), mine.output_layer(oracle(x)))


def test_conv2d_takes_padding_before_stride() -> None:
    layer = ref.Conv2d(2, 3, 3, 1, 2)
    oracle = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    oracle.weight, oracle.bias = layer.filters, layer.biases
    x = torch.randn(2, 2, 7, 8)
    assert torch.allclose(layer(x), oracle(x))


CASES = [
    (bugs.CONV2D, ref.Conv2d, (2, 3, 3, 2, 1), (2, 2, 7, 7)),
    (bugs.RNN_LAYER, ref.RNNLayer, (3, 5, 2), (2, 4, 3)),
    (bugs.LSTM_LAYER, ref.LSTMLayer, (3, 5, 2), (2, 4, 3)),
    (bugs.SELF_ATTENTION, ref.SelfAttention, (4,), (2, 5, 4)),
    (bugs.MULTI_HEAD_ATTENTION, ref.MultiHeadAttention, (6, 3), (2, 5, 6)),
    (bugs.TRANSFORMER_ENCODER, ref.TransformerEncoder, (6, 3, 8, 2), (2, 5, 6)),
]


@pytest.mark.parametrize("variants, cls, args, shape", CASES,
                         ids=[c[1].__name__ for c in CASES])
def test_every_variant_differs_from_its_reference(
    variants: list[bugs.Variant], cls: type[nn.Module], args: tuple[int, ...],
    shape: tuple[int, ...]
) -> None:
    reference = cls(*args).double()
    x = torch.randn(*shape, dtype=torch.float64)
    want = reference(x)
    for variant in variants:
        module = variant.build(*args).double()
        module.load_state_dict(reference.state_dict())
        got = module(x)
        assert got.shape != want.shape or not torch.allclose(got, want), variant.name
        assert variant.hint.endswith(".")
