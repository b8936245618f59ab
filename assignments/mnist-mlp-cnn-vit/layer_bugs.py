"""Known-bug variants of ``layers.py``'s ViT layers, with the hint each one earns.

A spec names a list with ``variants = "layer_bugs.py:ATTENTION"`` (or
``MULTI_HEAD``, ``ENCODER``). Each :class:`ModuleVariant`'s ``build`` takes the reference
class's constructor arguments and returns a module with the reference's parameter names,
so the grader loads the reference's weights into it and runs the same inputs (layers
created inside ``forward`` need no variant: module_compare names the parameters a
submission fails to register). The variants of the multi-head and encoder lists include
every head bug, placed inside the bigger module.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 - PyTorch's own convention

from .layers import MultiHeadAttention, PreLNEncoderLayer, SingleHeadAttention

__all__ = ["ModuleVariant", "ATTENTION", "MULTI_HEAD", "ENCODER", "VARIANTS"]

@dataclass(frozen=True)
class ModuleVariant:
    """A named wrong module and the hint shown when a submission matches it."""

    name: str
    hint: str
    build: Callable[..., nn.Module]
    by: Literal["output", "parameters"] = "output"


class _ValueWithKeyWeights(SingleHeadAttention):
    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.dropout(self.weights(x)) @ self.W_k(x)
        return out


class _NoScaling(SingleHeadAttention):
    def weights(self, x: Tensor) -> Tensor:
        return torch.softmax(self.W_q(x) @ self.W_k(x).transpose(-2, -1), dim=-1)


class _SoftmaxOverQueries(SingleHeadAttention):
    def weights(self, x: Tensor) -> Tensor:
        scores = self.W_q(x) @ self.W_k(x).transpose(-2, -1) / math.sqrt(self.d_k)
        return torch.softmax(scores, dim=-2)


class _ScaledByModelWidth(SingleHeadAttention):
    def weights(self, x: Tensor) -> Tensor:
        scores = self.W_q(x) @ self.W_k(x).transpose(-2, -1) / math.sqrt(x.shape[-1])
        return torch.softmax(scores, dim=-1)


class _DropoutInEval(SingleHeadAttention):
    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = F.dropout(self.weights(x), self.dropout.p) @ self.W_v(x)
        return out


class _DropoutOnOutput(SingleHeadAttention):
    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.dropout(self.weights(x) @ self.W_v(x))
        return out


HEAD_BUGS: list[tuple[str, str, type[SingleHeadAttention]]] = [
    ("value_with_key_weights", "Your output matches attention whose values are projected with "
     "the key weights: V must be W_v(x), not W_k(x).", _ValueWithKeyWeights),
    ("no_scaling", "Your output matches attention without the 1/sqrt(d_k) scaling: divide "
     "Q K^T by sqrt(d_k) before the softmax.", _NoScaling),
    ("softmax_over_queries", "Your output matches a softmax over the wrong axis: normalise "
     "Q K^T over the keys (the last axis), so each query's weights sum to 1.",
     _SoftmaxOverQueries),
    ("scaled_by_d_model", "Your output matches scaling by sqrt(d_model): the scale is "
     "1/sqrt(d_k), the width of one head's keys.", _ScaledByModelWidth),
    ("dropout_in_eval", "Your output matches attention that keeps dropping weights in eval "
     "mode: F.dropout(x, p) defaults to training=True; use the nn.Dropout module (or pass "
     "training=self.training).", _DropoutInEval),
    ("dropout_on_output", "Your train-mode output matches dropout applied to the attention "
     "output: apply it to the attention weights (after the softmax), before multiplying by "
     "V.", _DropoutOnOutput),
]

ATTENTION: list[ModuleVariant] = [ModuleVariant(name, hint, cls) for name, hint, cls in HEAD_BUGS]


def _with_heads(module: nn.Module, head: type[SingleHeadAttention]) -> nn.Module:
    """``module`` with every SingleHeadAttention inside replaced by ``head`` (same names)."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is SingleHeadAttention:
                d_model, d_k = child.W_q.in_features, child.W_q.out_features
                setattr(parent, name, head(d_model, d_k, child.dropout.p))
    return module


def _inside(build: Callable[..., nn.Module], where: str) -> list[ModuleVariant]:
    def variant(name: str, hint: str, head: type[SingleHeadAttention]) -> ModuleVariant:
        def make(*args: object, **kwargs: object) -> nn.Module:
            return _with_heads(build(*args, **kwargs), head)
        return ModuleVariant(name, f"In the attention heads of your {where}: {hint}", make)

    return [variant(*bug) for bug in HEAD_BUGS]


MULTI_HEAD: list[ModuleVariant] = _inside(MultiHeadAttention, "MultiHeadAttention")


class _PostLN(PreLNEncoderLayer):
    def forward(self, x: Tensor) -> Tensor:
        x = self.ln1(x + self.dropout(self.W_o(self.attention(x))))
        out: Tensor = self.ln2(x + self.dropout(self.mlp(x)))
        return out


class _NoAttentionResidual(PreLNEncoderLayer):
    def forward(self, x: Tensor) -> Tensor:
        x = self.attend(x)
        out: Tensor = x + self.dropout(self.mlp(self.ln2(x)))
        return out


class _NoMLPResidual(PreLNEncoderLayer):
    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attend(x)
        out: Tensor = self.dropout(self.mlp(self.ln2(x)))
        return out


class _SharedNorm(PreLNEncoderLayer):
    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attend(x)
        out: Tensor = x + self.dropout(self.mlp(self.ln1(x)))
        return out


class _NoOutputProjection(PreLNEncoderLayer):
    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__(d_model, num_heads, d_ff, dropout)
        del self.W_o

    def attend(self, x: Tensor) -> Tensor:
        out: Tensor = self.dropout(self.attention(self.ln1(x)))
        return out


class _GELU(PreLNEncoderLayer):
    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__(d_model, num_heads, d_ff, dropout)
        self.mlp[1] = nn.GELU()


class _NoMLPDropout(PreLNEncoderLayer):
    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0) -> None:
        super().__init__(d_model, num_heads, d_ff, dropout)
        self.mlp[2] = nn.Identity()


ENCODER: list[ModuleVariant] = [
    ModuleVariant("post_ln", "Your output matches a post-LN layer (LayerNorm after each "
                  "residual addition): this layer is pre-LN, x + attention(ln1(x)) then "
                  "x + mlp(ln2(x)).", _PostLN),
    ModuleVariant("no_attention_residual", "Your output matches a layer without the residual "
                  "connection around attention: add x back, x + attention(ln1(x)).",
                  _NoAttentionResidual),
    ModuleVariant("no_mlp_residual", "Your output matches a layer without the residual "
                  "connection around the MLP: x + mlp(ln2(x)).", _NoMLPResidual),
    ModuleVariant("shared_norm", "Your output matches a layer that uses ln1 before the MLP "
                  "too: the MLP block has its own LayerNorm, ln2.", _SharedNorm),
    ModuleVariant("no_output_projection", "Your output matches a layer without W^O: add a "
                  "nn.Linear(d_model, d_model, bias=False) after the multi-head attention.",
                  _NoOutputProjection, "parameters"),
    ModuleVariant("gelu_mlp", "Your output matches an MLP with GELU: the handout's MLP is "
                  "B(ReLU(A(x))).", _GELU),
    ModuleVariant("no_mlp_dropout", "Your train-mode output matches an MLP without its "
                  "dropout: dropout is used after the attention, inside the MLP (after the "
                  "ReLU) and after the MLP.", _NoMLPDropout),
    *_inside(PreLNEncoderLayer, "encoder layer"),
]

VARIANTS: dict[str, list[ModuleVariant]] = {
    "single_head_attention": ATTENTION,
    "multi_head_attention": MULTI_HEAD,
    "pre_ln_encoder_layer": ENCODER,
}
