"""Checks of the NumPy CNN homework (11-785 HW2P1, spring 2020 and spring 2021): the
multiple choice and the Conv1D and Conv2D layers (the networks are in networks.py).

Everything expected is computed here, on the trusted side, with ``reference``'s NumPy
layers and this folder's own (``models``, ``conv2d``, ``bug_variants``); the sandbox only
receives inputs and weights and returns the student's answers. Inputs come from the
per-attempt secret seed in ``ctx.rng``. Student code is reached the way the course's runner
reaches it: modules by the names its sys.path gives them (``conv``, ``mc``; params
``module``/``class`` rename them), layers built with the course's six constructor
arguments and called through ``__call__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from pydantic import Field

from grader.api import CheckContext, CheckFailed, CheckParams, Mismatch, Remote, Tolerances, check
from reference.numpy_layers import conv1d_backward, conv1d_forward

from . import networks  # noqa: F401 - registers the networks' checks
from .bug_variants import (
    CONV1D_DB_VARIANTS,
    CONV1D_DW_VARIANTS,
    CONV1D_DX_VARIANTS,
    CONV1D_FORWARD_VARIANTS,
    DB_SHAPE_HINT,
    Variant,
    conv1d_width_hint,
    matching_variant,
)
from .conv2d import (
    CONV2D_BACKWARD_VARIANTS,
    CONV2D_FORWARD_VARIANTS,
    conv2d_backward,
    conv2d_forward,
)
from .handin import Renamed, student_class

Part = Literal["forward", "dx", "dW", "db"]


class MultipleChoiceParams(CheckParams):
    answers: list[str] = Field(min_length=1, description="the right letter of each question, "
                               "in order")
    module: str = Field("mc", description="the student's module with question_1() ...")
    scoring: Literal["all", "per_question"] = Field("all", description="all or nothing "
                                                    "(spring 2020) or per question (2021)")
    exact: bool = Field(False, description="compare the strings as they are (the course's "
                        "runner); otherwise case and surrounding spaces are ignored")


class ConvParams(Tolerances, Renamed):
    trials: int = Field(4, ge=1, description="random configurations, each a fresh layer")
    bias: Literal["random", "zero"] = Field("random", description="the layers' bias (the "
                                            "course's runner: zero)")


class Conv1DParams(ConvParams):
    also: list[Part] = Field(default_factory=list, description="other parts that must be "
                             "right too for these points (forward, dx, dW, db)")
    also_bias: Literal["same", "zero"] = Field("same", description="the bias the also parts "
                                               "are checked with")


class Conv1DBackwardParams(Conv1DParams):
    quantity: Literal["dx", "dW", "db"] = Field(description="the part of backward compared")


class Conv2DParams(ConvParams):
    trials: int = Field(2, ge=1, description="random configurations, each a fresh layer")


class Conv2DBackwardParams(Conv2DParams):
    also: list[Literal["forward"]] = Field(default_factory=list, description="[\"forward\"]: "
                                           "the forward output must be right too")


@check("mytorch_cnn.multiple_choice", params=MultipleChoiceParams)
def multiple_choice(ctx: CheckContext) -> float | None:
    """question_1() ... question_N() of ``mc`` must return the letters of ``answers``;
    ``scoring`` = "all" (all or nothing, spring 2020) or "per_question" (spring 2021).
    ``exact = true`` compares the strings as they are, as 11-785's runner does
    (``'b' == mc.question_1()``); otherwise case and surrounding spaces are ignored."""
    params: MultipleChoiceParams = ctx.params
    exact = params.exact
    answers = [a if exact else a.strip().lower() for a in params.answers]
    module = ctx.session.import_module(params.module)
    wrong = []
    for number, expected in enumerate(answers, start=1):
        got = module.method(f"question_{number}")
        if isinstance(got, str) and (got if exact else got.strip().lower()) == expected:
            continue
        wrong.append(f"question_{number}() returned {_short(got)}")
        if isinstance(got, str) and got.strip().lower() == expected.strip().lower():
            wrong[-1] += f" (the course's grader needs exactly {expected!r})"
    if not wrong:
        return None
    per_question = params.scoring == "per_question"
    fraction = 1 - len(wrong) / len(answers) if per_question else 0.0
    rule = "" if per_question else " (all must be right for the points)"
    raise CheckFailed(f"{len(wrong)} of {len(answers)} answers are wrong{rule}: "
                      + "; ".join(wrong) + ".", fraction)


# --------------------------------------------------------------------------- Conv1D


@dataclass(frozen=True)
class ConvCase:
    """One random convolution configuration and its inputs (1-D or 2-D)."""

    in_channel: int
    out_channel: int
    kernel_size: int
    stride: int
    x: np.ndarray  # (batch, in_channel, width) or (batch, in_channel, width, width)
    W: np.ndarray  # (out_channel, in_channel, kernel_size[, kernel_size])
    b: np.ndarray  # (out_channel,)

    def describe(self, layer: str = "Conv1D") -> str:
        return (f"{layer}(in_channel={self.in_channel}, out_channel={self.out_channel}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}) on x of shape "
                f"{self.x.shape}")


def conv_cases(rng: np.random.Generator, trials: int, dims: int = 1, *,
               zero_bias: bool = False) -> list[ConvCase]:
    """Random configurations; the first always has kernel > 1, stride > 1 and batch > 1
    (with one example, a db averaged over the batch would pass by luck). 2-D inputs are
    square, as the course tests them. Biases are random unless ``zero_bias`` (the course's
    runner uses zeros, which cannot tell a layer that ignores b)."""
    cases = []
    for trial in range(trials):
        first = trial == 0
        in_c, out_c = int(rng.integers(2, 9)), int(rng.integers(2, 9))
        kernel = int(rng.integers(2 if first else 1, 7 if dims == 1 else 6))
        stride = int(rng.integers(2 if first else 1, 4 if dims == 1 else 5))
        batch = int(rng.integers(2 if first else 1, 5 if dims == 1 else 4))
        width = int(rng.integers(20, 61) if dims == 1 else rng.integers(max(kernel, 8), 25))
        if first and dims == 1 and (width - kernel) // stride + 1 == out_c:
            width += 1  # keep db's shape distinguishable from the width
        cases.append(ConvCase(
            in_c, out_c, kernel, stride,
            rng.standard_normal((batch, in_c, *([width] * dims))),
            rng.standard_normal((out_c, in_c, *([kernel] * dims))),
            np.zeros(out_c) if zero_bias else rng.standard_normal(out_c),
        ))
    return cases


def cases_for(ctx: CheckContext, dims: int = 1) -> list[ConvCase]:
    """The test's cases: params ``trials`` and ``bias`` ("random", the default, or "zero")."""
    params: ConvParams = ctx.params
    return conv_cases(ctx.rng, params.trials, dims, zero_bias=params.bias == "zero")


def student_conv(ctx: CheckContext, case: ConvCase, name: str) -> Remote:
    """Built as the course builds it, Conv(in, out, kernel, stride, weight_init_fn,
    bias_init_fn) with NumPy's own functions, then given the case's W and b."""
    numpy = ctx.session.import_module("numpy")
    randn, zeros = numpy.get_object("random").get_object("randn"), numpy.get_object("zeros")
    layer = student_class(ctx, "conv", name).new(
        case.in_channel, case.out_channel, case.kernel_size, case.stride, randn, zeros)
    layer.set("W", case.W)
    layer.set("b", case.b)
    return layer


def _variant_hint(variants: Sequence[Variant], got: Any, args: Sequence[object]) -> str | None:
    variant = matching_variant(variants, got, args)
    return variant.hint if variant else None


CONV1D_PARTS = ("forward", "dx", "dW", "db")
BACKWARD_VARIANTS = {"dx": CONV1D_DX_VARIANTS, "dW": CONV1D_DW_VARIANTS, "db": CONV1D_DB_VARIANTS}


@check("mytorch_cnn.conv1d_forward", params=Conv1DParams)
def conv1d_forward_check(ctx: CheckContext) -> float | None:
    """Conv1D(x) against the reference on random configurations (params ``also``: see
    ``conv1d_test``)."""
    conv1d_test(ctx, "forward")
    return None


@check("mytorch_cnn.conv1d_backward", params=Conv1DBackwardParams)
def conv1d_backward_check(ctx: CheckContext) -> float | None:
    """Conv1D(x) then backward(delta): one of dx (returned), dW or db (attributes), param
    ``quantity`` (and params ``also``: see ``conv1d_test``)."""
    params: Conv1DBackwardParams = ctx.params
    conv1d_test(ctx, params.quantity)
    return None


def conv1d_test(ctx: CheckContext, part: str) -> None:
    """``part`` of Conv1D (forward, dx, dW or db) on random configurations; then the parts
    params ``also`` names, on the same configurations, since a course's runner may give a
    part's points only when other parts are right too (11-785's spring-2020 runner scores
    no backward part of a trial whose forward is wrong; its spring-2021 runner gives the 40
    Conv1D points all or nothing). ``also_bias = "zero"`` checks those other parts with zero
    biases, as that runner does, so a stricter bias of this test's own is not charged twice."""
    params: Conv1DParams = ctx.params
    also = params.also
    cases = cases_for(ctx)
    for case in cases:
        _conv1d_part(ctx, case, part)
    if params.also_bias == "zero":
        cases = [replace(case, b=np.zeros_like(case.b)) for case in cases]
    for other in (name for name in CONV1D_PARTS if name in also and name != part):
        try:
            for case in cases:
                _conv1d_part(ctx, case, other)
        except CheckFailed as failed:
            message = ALSO_NEEDED.format(layer="Conv1D", part=_PART_NAMES[other])
            raise CheckFailed(f"{message} {failed.message}") from None


ALSO_NEEDED = ("The course's grader gives these points only when {layer}'s {part} is right "
               "too, and it is not:")
_PART_NAMES = {"forward": "forward output", "dx": "dx", "dW": "dW", "db": "db"}


def _conv1d_part(ctx: CheckContext, case: ConvCase, part: str) -> None:
    """Compare one part of a fresh student Conv1D on ``case`` with the reference."""
    layer = student_conv(ctx, case, "Conv1D")
    y = layer.call(case.x)
    if part == "forward":
        expected = conv1d_forward(case.x, case.W, case.b, case.stride)

        def hint(mismatch: Mismatch, y: Any = y, case: ConvCase = case) -> str | None:
            if mismatch.layer == "shape" and isinstance(y, np.ndarray) and y.ndim == 3:
                width = case.x.shape[2]
                return conv1d_width_hint(width, case.kernel_size, case.stride, y.shape[2])
            return _variant_hint(CONV1D_FORWARD_VARIANTS, y, (case.x, case.W, case.b, case.stride))

        ctx.expect_array("Conv1D(x)", y, expected, hint=hint, context=case.describe())
        return
    out_width = (case.x.shape[2] - case.kernel_size) // case.stride + 1
    delta = ctx.rng.standard_normal((case.x.shape[0], case.out_channel, out_width))
    dx = layer.method("backward", delta)
    got = dx if part == "dx" else layer.attr(part)
    dx_ref, dw_ref, db_ref = conv1d_backward(case.x, case.W, delta, case.stride)
    expected = {"dx": dx_ref, "dW": dw_ref, "db": db_ref}[part]
    args = (delta,) if part == "db" else (case.x, case.W, delta, case.stride)

    def backward_hint(mismatch: Mismatch, got: Any = got, args: tuple[Any, ...] = args
                      ) -> str | None:
        if part == "db" and mismatch.layer == "shape":
            return DB_SHAPE_HINT
        return _variant_hint(BACKWARD_VARIANTS[part], got, args)

    name = "backward(delta)" if part == "dx" else f"{part} after backward(delta)"
    ctx.expect_array(name, got, expected, kind="gradients", hint=backward_hint,
                     context=f"{case.describe()}, delta of shape {delta.shape}")


# --------------------------------------------------------------------------- Conv2D


@check("mytorch_cnn.conv2d_forward", params=Conv2DParams)
def conv2d_forward_check(ctx: CheckContext) -> float | None:
    """Conv2D(x) against the reference on random square inputs (spring 2021 and later)."""
    for case in cases_for(ctx, dims=2):
        y = student_conv(ctx, case, "Conv2D").call(case.x)
        expected = conv2d_forward(case.x, case.W, case.b, case.stride)
        args = (case.x, case.W, case.b, case.stride)

        def hint(_: Mismatch, y: Any = y, args: tuple[Any, ...] = args) -> str | None:
            return _variant_hint(CONV2D_FORWARD_VARIANTS, y, args)

        ctx.expect_array("Conv2D(x)", y, expected, context=case.describe("Conv2D"), hint=hint)
    return None


@check("mytorch_cnn.conv2d_backward", params=Conv2DBackwardParams)
def conv2d_backward_check(ctx: CheckContext) -> float | None:
    """Conv2D(x) then backward(delta): dx (returned), dW and db (attributes), all three; with
    params ``also = ["forward"]`` the forward output must be right too (11-785's spring-2021
    runner gives no backward points when it is not)."""
    params: Conv2DBackwardParams = ctx.params
    also = params.also
    for case in cases_for(ctx, dims=2):
        layer = student_conv(ctx, case, "Conv2D")
        y = layer.call(case.x)
        expected_y = conv2d_forward(case.x, case.W, case.b, case.stride)
        delta = ctx.rng.standard_normal(expected_y.shape)
        got = {"dx": layer.method("backward", delta)}
        got["dW"], got["db"] = layer.attr("dW"), layer.attr("db")
        expected = dict(zip(("dx", "dW", "db"),
                            conv2d_backward(case.x, case.W, delta, case.stride), strict=True))
        args = (case.x, case.W, delta, case.stride)
        for quantity in ("dx", "dW", "db"):
            name = "backward(delta)" if quantity == "dx" else f"{quantity} after backward(delta)"

            def hint(_: Mismatch, got: Any = got[quantity], args: tuple[Any, ...] = args,
                     variants: Sequence[Variant] = CONV2D_BACKWARD_VARIANTS[quantity]
                     ) -> str | None:
                return _variant_hint(variants, got, args)

            ctx.expect_array(name, got[quantity], expected[quantity], kind="gradients",
                             context=f"{case.describe('Conv2D')}, delta of shape {delta.shape}",
                             hint=hint)
        if "forward" in also:
            try:
                ctx.expect_array("Conv2D(x)", y, expected_y, context=case.describe("Conv2D"))
            except CheckFailed as failed:
                message = ALSO_NEEDED.format(layer="Conv2D", part="forward output")
                raise CheckFailed(f"{message} {failed.message}") from None
    return None


def _short(value: Any) -> str:
    plain = isinstance(value, str | int | float | type(None))
    text = repr(value) if plain else type(value).__name__
    return text[:40]
