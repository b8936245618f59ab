"""Known-bug variants of the PyTorch reference modules, with the hint each one earns.

``VARIANTS`` maps a list name (what a spec's ``variants = "<name>"`` names) to
:class:`TorchVariant` objects. A variant's ``build`` takes the reference class's
constructor arguments and returns a module with the reference's parameter names, so the
grader can load the very ``state_dict`` it gave the student and run the same inputs:

* ``by = "output"``: recognised when its output (float64) has the student's shape and
  values (``matching_module_variant``).
* ``by = "parameters"``: recognised from the student's registered parameter names alone,
  when they are a strict subset of the reference's (layers built inside ``forward`` are
  never registered, get fresh random weights on every call and never train).

``FUNCTION_VARIANTS`` holds plain-function bugs as ``reference.matching.Variant``
(``compute`` takes the reference function's arguments as NumPy arrays), for checks of
functions such as ``accuracy(y, predicted)``; match them with ``matching_variant``.

List names and the reference each one shadows (constructor arguments in brackets):
conv2d / faster_conv2d [in_channels, out_channels, kernel_size, stride, padding],
rnn_layer / lstm_layer [input_size, hidden_size], rnn / lstm [input_size, hidden_size,
output_size], self_attention [embed_dim], multi_head_attention [embed_dim, num_heads],
transformer_encoder_layer / transformer_encoder_layer_pre_ln [embed_dim, num_heads, ff_dim],
mlp_cifar10 [] (MLPinPyTorch); FUNCTION_VARIANTS["accuracy"] (y, predicted).
``grader.checks.torch_modules`` (module_compare) and ``torch_functions`` (function_compare)
consume these lists; the buggy modules live in ``reference.torch_bug_modules`` (convolution,
recurrent, attention) and ``reference.torch_bug_models`` (transformer layers, the MLP).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from reference.matching import Variant, matching_variant
from reference.numpy_layers import FloatArray
from reference.torch_bug_models import ENCODER_BUGS, MLP_BUGS, PRE_LN_ENCODER_BUGS
from reference.torch_bug_modules import (
    ATTENTION_BUGS,
    CONV_BUGS,
    FASTER_CONV_BUGS,
    LSTM_BUGS,
    MULTI_HEAD_BUGS,
    RNN_BUGS,
    UNREGISTERED_HINT,
    BugSpec,
    with_layer,
)
from reference.torch_layers import LSTM, RNN, TransformerEncoderLayer

__all__ = [
    "TorchVariant",
    "VARIANTS",
    "FUNCTION_VARIANTS",
    "UNREGISTERED_HINT",
    "matching_module_variant",
    "unregistered_hint",
    "matching_variant",
    "variant_output",
]



@dataclass(frozen=True)
class TorchVariant:
    """A named wrong module and the hint shown when a submission matches it.

    ``build(*args, **kwargs)`` takes the reference constructor's arguments and returns a
    module with the reference's parameter names (for ``by == "output"``).
    """

    name: str
    hint: str
    build: Callable[..., torch.nn.Module]
    by: Literal["output", "parameters"] = "output"


def _variants(bugs: Sequence[BugSpec]) -> list[TorchVariant]:
    return [TorchVariant(b.name, b.hint, b.build, b.by) for b in bugs]


def _model_variants(model: type[RNN] | type[LSTM], attribute: str,
                    layer_bugs: Sequence[BugSpec]) -> list[TorchVariant]:
    """The RNN / LSTM classifier with its recurrent layer replaced by each buggy layer."""
    def build_for(bug: BugSpec) -> Callable[..., torch.nn.Module]:
        def build(input_size: int, hidden_size: int, output_size: int) -> torch.nn.Module:
            return with_layer(model(input_size, hidden_size, output_size), attribute,
                              bug.build(input_size, hidden_size))
        return build

    return [TorchVariant(b.name, b.hint, build_for(b), b.by)
            for b in layer_bugs if b.name != "returns_last_state"]


def _encoder_attention_variants(norm_first: bool) -> list[TorchVariant]:
    """Encoder layers whose attention is a buggy MultiHeadAttention."""
    def build_for(bug: BugSpec) -> Callable[..., torch.nn.Module]:
        def build(embed_dim: int, num_heads: int, ff_dim: int,
                  norm_first_: bool = norm_first) -> torch.nn.Module:
            layer = TransformerEncoderLayer(embed_dim, num_heads, ff_dim, norm_first=norm_first_)
            return with_layer(layer, "attention", bug.build(embed_dim, num_heads))
        return build

    # the encoder's own structural variant already covers unregistered attention layers
    return [TorchVariant(b.name, b.hint, build_for(b)) for b in MULTI_HEAD_BUGS
            if b.by == "output"]


VARIANTS: dict[str, list[TorchVariant]] = {
    "conv2d": _variants(CONV_BUGS),
    "faster_conv2d": _variants(FASTER_CONV_BUGS),
    "rnn_layer": _variants(RNN_BUGS),
    "rnn": _model_variants(RNN, "rnn", RNN_BUGS),
    "lstm_layer": _variants(LSTM_BUGS),
    "lstm": _model_variants(LSTM, "lstm", LSTM_BUGS),
    "self_attention": _variants(ATTENTION_BUGS),
    "multi_head_attention": _variants(MULTI_HEAD_BUGS),
    "transformer_encoder_layer": [*_variants(ENCODER_BUGS), *_encoder_attention_variants(False)],
    "transformer_encoder_layer_pre_ln": [
        *_variants(PRE_LN_ENCODER_BUGS), *_encoder_attention_variants(True),
    ],
    "mlp_cifar10": _variants(MLP_BUGS),
}


# --------------------------------------------------------------------------- accuracy


def _labels(y: np.ndarray) -> np.ndarray:
    return np.asarray(y).argmax(axis=1) if np.ndim(y) == 2 else np.asarray(y)


def _accuracy_elementwise(y: np.ndarray, predicted: np.ndarray) -> FloatArray:
    """Mean over all N*C entries of one_hot(argmax(predicted)) == y (zeros agree too)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    one_hot = np.eye(predicted.shape[1])[predicted.argmax(axis=1)]
    return np.asarray((one_hot == np.asarray(y)).mean(), dtype=np.float64)


def _accuracy_rounded(y: np.ndarray, predicted: np.ndarray) -> FloatArray:
    """Mean over all N*C entries of round(predicted) == y."""
    rounded = np.round(np.asarray(predicted, dtype=np.float64))
    return np.asarray((rounded == np.asarray(y)).mean(), dtype=np.float64)


def _accuracy_count(y: np.ndarray, predicted: np.ndarray) -> FloatArray:
    """Number of correct rows instead of the fraction."""
    return np.asarray((np.asarray(predicted).argmax(axis=1) == _labels(y)).sum(), np.float64)


def _accuracy_percent(y: np.ndarray, predicted: np.ndarray) -> FloatArray:
    """Percentage instead of a fraction."""
    return np.asarray(100.0 * (np.asarray(predicted).argmax(axis=1) == _labels(y)).mean(),
                      dtype=np.float64)


_ONE_HOT_HINT = (
    "Your accuracy compares the one-hot vectors element by element, so the zeros of every "
    "wrong class count as correct: compare argmax(y, dim=1) with argmax(predicted, dim=1), "
    "one comparison per example."
)

FUNCTION_VARIANTS: dict[str, list[Variant]] = {
    "accuracy": [
        Variant("accuracy_elementwise", _ONE_HOT_HINT, _accuracy_elementwise),
        Variant("accuracy_rounded_elementwise", _ONE_HOT_HINT, _accuracy_rounded),
        Variant("accuracy_count", "Your accuracy is the number of correct predictions: divide "
                "by the number of examples to return a fraction in [0, 1].", _accuracy_count),
        Variant("accuracy_percent", "Your accuracy is a percentage: return a fraction in [0, 1].",
                _accuracy_percent),
    ],
}


# --------------------------------------------------------------------------- matching


def variant_output(
    variant: TorchVariant, args: Sequence[Any], kwargs: Mapping[str, Any],
    state: Mapping[str, Any], inputs: Sequence[Any],
) -> np.ndarray:
    """The variant's float64 output for ``inputs`` with ``state`` loaded (strictly)."""
    module = variant.build(*args, **dict(kwargs)).to(torch.float64)
    module.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
    tensors = [torch.as_tensor(np.asarray(x)) for x in inputs]
    tensors = [t.to(torch.float64) if t.is_floating_point() else t for t in tensors]
    with torch.no_grad():
        out = module(*tensors)
    return np.asarray(out.detach().numpy(), dtype=np.float64)


def matching_module_variant(
    variants: Sequence[TorchVariant],
    got: object,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    inputs: Sequence[Any] = (),
    parameter_names: Sequence[str] | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> TorchVariant | None:
    """The first variant that explains the student's answer, or None.

    got: the student's forward output as an array (anything else matches no output variant);
    args / kwargs: the constructor arguments; state: the reference ``state_dict`` both were
    given (name -> array); inputs: the forward arguments; parameter_names: the names of the
    student's registered parameters, when known. A variant that cannot run matches nothing.
    """
    if parameter_names is not None and state is not None:
        names, wanted = set(parameter_names), set(state)
        if names < wanted:
            found = next((v for v in variants if v.by == "parameters"), None)
            if found is not None:
                return found
    try:
        answer = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    for variant in variants:
        if variant.by != "output" or state is None:
            continue
        try:
            expected = variant_output(variant, args, kwargs or {}, state, inputs)
        except Exception:  # noqa: BLE001 - a variant that cannot run here does not match
            continue
        if expected.shape == answer.shape and np.allclose(answer, expected, rtol=rtol, atol=atol):
            return variant
    return None


def unregistered_hint(reference_names: Sequence[str], student_names: Sequence[str]) -> str:
    """UNREGISTERED_HINT naming the reference parameters the student did not register."""
    missing = sorted(set(reference_names) - set(student_names))
    return f"{UNREGISTERED_HINT} Missing: {', '.join(missing) or 'none'}."
