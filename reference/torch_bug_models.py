"""The wrong transformer layers and CS 480 MLPs behind ``reference.torch_bugs``.

Like ``reference.torch_bug_modules``: each buggy class subclasses its reference and changes
only ``forward`` (one ``mode`` per bug), except the deliberately unregistered ones.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from reference.torch_bug_modules import UNREGISTERED_HINT, BugSpec, UnregisteredAttention
from reference.torch_layers import MLPinPyTorch, TransformerEncoderLayer

# --------------------------------------------------------------------------- transformer


class BuggyEncoderLayer(TransformerEncoderLayer):
    """TransformerEncoderLayer with one bug (``mode``); x (N, T, E) -> (N, T, E)."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int, norm_first: bool = False,
                 mode: str = "") -> None:
        super().__init__(embed_dim, num_heads, ff_dim, norm_first=norm_first)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        post = self.mode == "post_ln" or (not self.norm_first and self.mode != "pre_ln")
        return self._post_ln(x) if post else self._pre_ln(x)

    def _post_ln(self, x: Tensor) -> Tensor:
        m, a = self.mode, self.attention(x)
        if m == "norm_inside_residual":
            x = x + self.norm1(a)
        else:
            x = self.norm1(a if m == "missing_attention_residual" else x + a)
        f: Tensor = self.feed_forward(x)
        if m == "norm_inside_residual":
            out: Tensor = x + self.norm2(f)
            return out
        if m == "missing_second_norm":
            return x + f
        out = self.norm2(f if m == "missing_ff_residual" else x + f)
        return out

    def _pre_ln(self, x: Tensor) -> Tensor:
        m = self.mode
        for norm, block, missing in ((self.norm1, self.attention, "missing_attention_residual"),
                                     (self.norm2, self.feed_forward, "missing_ff_residual")):
            normed = norm(x)
            out: Tensor = block(normed)
            if m != missing:
                out = out + (normed if m == "residual_normalised" else x)
            x = out
        return x


class UnregisteredEncoderLayer(TransformerEncoderLayer):
    """An encoder layer whose attention is built inside forward (attention.* unregistered)."""

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int,
                 norm_first: bool = False) -> None:
        super().__init__(embed_dim, num_heads, ff_dim, norm_first=norm_first)
        del self.attention
        self.embed_dim = embed_dim

    def forward(self, x: Tensor) -> Tensor:
        attention = UnregisteredAttention(self.embed_dim)
        x = self.norm1(x + attention(x))
        out: Tensor = self.norm2(x + self.feed_forward(x))
        return out


def _encoder(mode: str, norm_first: bool = False) -> Callable[..., nn.Module]:
    return partial(BuggyEncoderLayer, norm_first=norm_first, mode=mode)


_MISSING_RESIDUAL = ("Your output matches a layer without the residual connection around the "
                     "{block}: add the block's input to its output (x + sublayer(...)).")

ENCODER_BUGS = [
    BugSpec("unregistered_layers", UNREGISTERED_HINT, UnregisteredEncoderLayer, "parameters"),
    BugSpec("missing_attention_residual", _MISSING_RESIDUAL.format(block="attention"),
            _encoder("missing_attention_residual")),
    BugSpec("missing_ff_residual", _MISSING_RESIDUAL.format(block="feed-forward block"),
            _encoder("missing_ff_residual")),
    BugSpec("pre_ln_instead_of_post_ln",
            "Your output matches a pre-LN layer, x + attention(norm1(x)): this layer is post-LN, "
            "x = norm1(x + attention(x)), then norm2(x + feed_forward(x)).", _encoder("pre_ln")),
    BugSpec("norm_inside_residual",
            "Your output matches a layer that normalises the sublayer output before adding the "
            "residual: post-LN normalises the sum, norm1(x + attention(x)).",
            _encoder("norm_inside_residual")),
    BugSpec("missing_second_norm",
            "Your output matches a layer without the second LayerNorm: the feed-forward block "
            "ends with norm2(x + feed_forward(x)).", _encoder("missing_second_norm")),
]

PRE_LN_ENCODER_BUGS = [
    BugSpec("unregistered_layers", UNREGISTERED_HINT, UnregisteredEncoderLayer, "parameters"),
    BugSpec("missing_attention_residual", _MISSING_RESIDUAL.format(block="attention"),
            _encoder("missing_attention_residual", True)),
    BugSpec("missing_ff_residual", _MISSING_RESIDUAL.format(block="feed-forward block"),
            _encoder("missing_ff_residual", True)),
    BugSpec("post_ln_instead_of_pre_ln",
            "Your output matches a post-LN layer, norm1(x + attention(x)): this layer is pre-LN, "
            "x = x + attention(norm1(x)), then x + feed_forward(norm2(x)).",
            _encoder("post_ln", True)),
    BugSpec("residual_normalised",
            "Your output matches residuals that add the normalised input: pre-LN adds the raw "
            "input, x + attention(norm1(x)).", _encoder("residual_normalised", True)),
]


# --------------------------------------------------------------------------- CS 480 MLP


class BuggyMLP(MLPinPyTorch):
    """MLPinPyTorch with one bug (``mode``); x (N, 3072) -> (N, 10)."""

    def __init__(self, mode: str = "") -> None:
        super().__init__()
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        m = self.mode
        pre = x.reshape(x.shape[0], -1) @ self.W1
        if m != "missing_bias":
            pre = pre + self.b1
        hidden = torch.relu(pre) if m == "relu_hidden" else torch.sigmoid(pre)
        if m == "linear_hidden":
            hidden = pre
        logits: Tensor = hidden @ self.W2
        if m != "missing_bias":
            logits = logits + self.b2
        if m == "no_softmax":
            return logits
        if m == "log_softmax":
            return torch.log_softmax(logits, dim=1)
        return torch.softmax(logits, dim=0 if m == "softmax_wrong_axis" else 1)


class PlainTensorMLP(nn.Module):
    """MLPinPyTorch whose W1, b1, W2, b2 are plain tensors: nothing is registered."""

    def __init__(self) -> None:
        super().__init__()
        self.W1, self.b1 = torch.randn(3072, 256) * 0.01, torch.zeros(256)
        self.W2, self.b2 = torch.randn(256, 10) * 0.01, torch.zeros(10)

    def forward(self, x: Tensor) -> Tensor:
        w1, b1, w2, b2 = (t.to(x.dtype) for t in (self.W1, self.b1, self.W2, self.b2))
        hidden = torch.sigmoid(x.reshape(x.shape[0], -1) @ w1 + b1)
        return torch.softmax(hidden @ w2 + b2, dim=1)


def _mlp(mode: str) -> Callable[..., nn.Module]:
    return partial(BuggyMLP, mode=mode)


MLP_BUGS = [
    BugSpec("mlp_plain_tensors", "Your layers' weights are not registered parameters: make "
            "the layers attributes of the module (self.hidden = nn.Linear(...), not a Python "
            "list; nn.ModuleList for several) or wrap raw tensors in nn.Parameter(...), or "
            "the module has nothing to load, to train or to save.", PlainTensorMLP,
            "parameters"),
    BugSpec("mlp_missing_bias", "Your output matches the network without its biases: add b1 "
            "to the hidden pre-activation and b2 to the output.", _mlp("missing_bias")),
    BugSpec("mlp_softmax_wrong_axis", "Your output matches a softmax over the batch axis: "
            "apply softmax over the classes (dim=1), so each row sums to 1.",
            _mlp("softmax_wrong_axis")),
    BugSpec("mlp_no_softmax", "Your output matches the logits: forward returns class "
            "probabilities, softmax(hidden @ W2 + b2, dim=1).", _mlp("no_softmax")),
    BugSpec("mlp_log_softmax", "Your output matches log-probabilities: return softmax, "
            "not log_softmax.", _mlp("log_softmax")),
    BugSpec("mlp_relu_hidden", "Your output matches a ReLU hidden layer: the hidden layer "
            "uses a sigmoid.", _mlp("relu_hidden")),
    BugSpec("mlp_linear_hidden", "Your output matches a hidden layer without activation: "
            "apply a sigmoid to x @ W1 + b1.", _mlp("linear_hidden")),
]
