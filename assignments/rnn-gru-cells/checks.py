"""Trusted checks of rnn-gru-cells (they run on the grader, never in the sandbox).

They import only grader.api, and this folder's reference cells with a relative import.
Every check draws its sizes, weights and inputs from ctx.rng (a fresh secret seed per
attempt), hands them to the student's cell as arrays, and compares what comes back with
the reference on the trusted side; a mismatch that a known bug explains gets its hint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import Field

from grader.api import (
    CheckContext,
    CheckFailed,
    CheckParams,
    Mismatch,
    Remote,
    Tolerances,
    check,
    compare_array,
    construct,
    expect_array,
    student_class,
)

from .reference_cells import (
    GRU_WEIGHTS,
    RNNWeights,
    gru_backward,
    gru_forward,
    rnn_backward,
    rnn_forward,
)

RNN_GRADIENTS = ("dW_ih", "dW_hh", "db_ih", "db_hh")


def _sizes(ctx: CheckContext) -> tuple[int, int, int]:
    """(input_size, hidden_size, batch), different each attempt."""
    d, h, n = ctx.rng.integers(2, 7), ctx.rng.integers(2, 6), ctx.rng.integers(2, 5)
    return int(d), int(h), int(n)


def _matches(ctx: CheckContext, got: Any, variant: np.ndarray, kind: str = "values") -> bool:
    return compare_array("x", got, variant, ctx.tolerance(kind)) is None


def _rnn_cell(ctx: CheckContext, w: RNNWeights) -> Remote:
    cls = student_class(ctx, "rnn_cell", "RNNCell")
    cell = construct(ctx, cls, w.W_ih.shape[1], w.W_ih.shape[0])
    cell.method("init_weights", w.W_ih, w.W_hh, w.b_ih, w.b_hh)
    return cell


@check("rnn_gru_cells.rnn_forward", params=Tolerances)
def rnn_forward_check(ctx: CheckContext) -> None:
    d, h, n = _sizes(ctx)
    w = RNNWeights.draw(ctx.rng, d, h)
    x, h0 = ctx.rng.standard_normal((n, d)), ctx.rng.standard_normal((n, h))
    got = _rnn_cell(ctx, w).method("forward", x, h0)

    def hint(_: Any) -> str | None:
        if _matches(ctx, got, rnn_forward(w, x, h0, bias_hh=False)):
            return "b_hh is missing from the pre-activation (it adds both biases)."
        return None

    expect_array(ctx, "h_t", got, rnn_forward(w, x, h0), hint=hint,
                 context=f"RNNCell({d}, {h}).forward on a batch of {n}")


@check("rnn_gru_cells.rnn_backward", params=Tolerances)
def rnn_backward_check(ctx: CheckContext) -> None:
    d, h, n = _sizes(ctx)
    w = RNNWeights.draw(ctx.rng, d, h)
    x, h0 = ctx.rng.standard_normal((n, d)), ctx.rng.standard_normal((n, h))
    delta, h_t = ctx.rng.standard_normal((n, h)), rnn_forward(w, x, h0)
    cell = _rnn_cell(ctx, w)
    answer = cell.method("backward", delta, h_t, x, h0)
    if not (isinstance(answer, list) and len(answer) == 2):
        raise CheckFailed("RNNCell.backward must return the pair (dx, dh_prev_t).")
    want, summed = rnn_backward(w, delta, h_t, x, h0), rnn_backward(w, delta, h_t, x, h0,
                                                                     average=False)
    where = f"RNNCell({d}, {h}).backward on a batch of {n}"
    for name, got in (("dx", answer[0]), ("dh_prev_t", answer[1])):
        expect_array(ctx, name, got, want["dx" if name == "dx" else "dh"], kind="gradients",
                     context=where)
    for name in RNN_GRADIENTS:
        got = cell.attr(name)

        def hint(_: Any, got: Any = got, name: str = name) -> str | None:
            if _matches(ctx, got, summed[name], "gradients"):
                return (f"{name} is summed over the batch; the assignment averages "
                        "(divide by the batch size).")
            return None

        expect_array(ctx, name, got, want[name], kind="gradients", hint=hint, context=where)


def _gru_weights(ctx: CheckContext, d: int, h: int) -> dict[str, np.ndarray]:
    shapes = {"x": (h, d), "h": (h, h), "b": (h,)}
    return {name: ctx.rng.standard_normal(shapes["b" if name[0] == "b" else name[-1]])
            for name in GRU_WEIGHTS}


def _gru_cell(ctx: CheckContext, w: dict[str, np.ndarray], d: int, h: int) -> Remote:
    cls = student_class(ctx, "gru_cell", "GRUCell")
    cell = construct(ctx, cls, d, h)
    cell.method("init_weights", *(w[name] for name in GRU_WEIGHTS))
    return cell


def _gru_hint(ctx: CheckContext, got: Any, w: dict[str, np.ndarray], x: np.ndarray,
              h0: np.ndarray) -> str | None:
    if _matches(ctx, got, gru_forward(w, x, h0, variant="bias_outside_reset")):
        return "bnh belongs inside the reset gate: n = tanh(Wnx x + bnx + r * (Wnh h + bnh))."
    if _matches(ctx, got, gru_forward(w, x, h0, variant="swapped_update")):
        return "z and 1 - z are swapped: h_t = (1 - z) * n + z * h."
    return None


@check("rnn_gru_cells.gru_forward", params=Tolerances)
def gru_forward_check(ctx: CheckContext) -> None:
    d, h, _ = _sizes(ctx)
    w = _gru_weights(ctx, d, h)
    x, h0 = ctx.rng.standard_normal(d), ctx.rng.standard_normal(h)
    got = _gru_cell(ctx, w, d, h).method("forward", x, h0)
    expect_array(ctx, "h_t", got, gru_forward(w, x, h0),
                 hint=lambda _: _gru_hint(ctx, got, w, x, h0),
                 context=f"GRUCell({d}, {h}).forward")


@check("rnn_gru_cells.gru_backward", params=Tolerances)
def gru_backward_check(ctx: CheckContext) -> None:
    d, h, _ = _sizes(ctx)
    w = _gru_weights(ctx, d, h)
    x, h0, delta = (ctx.rng.standard_normal(d), ctx.rng.standard_normal(h),
                    ctx.rng.standard_normal(h))
    cell = _gru_cell(ctx, w, d, h)
    forward = cell.method("forward", x, h0)
    hint = _gru_hint(ctx, forward, w, x, h0)
    answer = cell.method("backward", delta)
    if not (isinstance(answer, list) and len(answer) == 2):
        raise CheckFailed("GRUCell.backward must return the pair (dx, dh_prev_t).")
    want = gru_backward(w, x, h0, delta)
    flipped = gru_backward(w, x, h0, delta, variant="dz_sign")
    where = f"GRUCell({d}, {h}).backward"

    def explain(got: Any, name: str) -> str | None:
        if hint:
            return f"the forward pass is off: {hint}"
        if _matches(ctx, got, flipped[name], "gradients"):
            return "dL/dz has the wrong sign: h_t = (1 - z) n + z h gives dz = delta * (h - n)."
        return None

    def hint_for(got: Any, name: str) -> Callable[[Mismatch], str | None]:
        return lambda _: explain(got, name)

    for name, got in (("dx", answer[0]), ("dh", answer[1])):
        expect_array(ctx, name, got, want[name], kind="gradients", hint=hint_for(got, name),
                     context=where)
    for weight in GRU_WEIGHTS:
        got = cell.attr(f"d{weight}")
        expect_array(ctx, f"d{weight}", got, want[f"d{weight}"], kind="gradients",
                     hint=hint_for(got, f"d{weight}"), context=where)


class AnswersParams(CheckParams):
    answers: dict[str, str] = Field(min_length=1, description="the key: question name -> "
                                    "the right choice, e.g. {question_1 = \"b\"}")
    module: str = Field("mc", description="the student's module that holds the answers")


@check("rnn_gru_cells.answers", params=AnswersParams)
def answers_check(ctx: CheckContext) -> float:
    """params.answers: {question_1 = "b", ...}; the key never enters the sandbox."""
    params: AnswersParams = ctx.params
    key = params.answers
    module = ctx.session.import_module(params.module)
    wrong = []
    for name, expected in key.items():
        try:
            got = module.attr(name)
        except Exception:  # noqa: BLE001 - an unanswered question is a wrong answer
            got = None
        if not isinstance(got, str) or got.strip().lower() != expected:
            wrong.append(name)
    if wrong:
        raise CheckFailed(f"Wrong or missing answers: {', '.join(wrong)}.",
                          (len(key) - len(wrong)) / len(key))
    return 1.0
