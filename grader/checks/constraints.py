"""Constraints on a student's PyTorch model: size, layer types, frozen parameters, speed.

Each check builds the model from ``model`` / ``init_args`` / ``init_kwargs`` (see
``grader.checks.torch_common``), runs it once on a batch of ``input_shape`` when that is
given (so lazy layers get their sizes), and summarises it twice, before and after a
second forward pass: a model whose layers change in between fails (G4). Counts are
recomputed here from the parameter shapes the sandbox reports.
"""

from __future__ import annotations

import fnmatch
import math
import statistics
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from grader.checks.torch_common import (
    Construction,
    ModuleInfo,
    counted_parameters,
    input_specs,
    is_torch_nn,
    parameters,
    structure_changes,
    summary,
    warm_up,
)
from grader.context import CheckContext, CheckFailed
from grader.registry import check
from sandbox.session import Remote

ALWAYS_ALLOWED = ("Sequential", "ModuleList", "ModuleDict", "Identity", "Flatten")
# The trusted loop convolutions a speed check may time (sandbox.routines): one product per
# output position (the default), or the four nested loops of the EE 150 handout's hint.
BASELINES = ("torch_conv2d_loops", "torch_conv2d_four_loops")


def stable_summary(ctx: CheckContext) -> tuple[Construction, Remote, list[ModuleInfo]]:
    """Build, warm up, summarise, run again, summarise again; the two must agree, and
    with the parameter list."""
    made = Construction.from_params(ctx)
    model = made.build(ctx)
    warm_up(ctx, model)
    first = summary(ctx, model)
    warm_up(ctx, model)
    second = summary(ctx, model)
    changed = structure_changes(first, second)
    if changed:
        raise CheckFailed(changed)
    _consistent(ctx, model, second)
    return made, model, second


def _consistent(ctx: CheckContext, model: Remote, rows: Sequence[ModuleInfo]) -> int:
    """The parameter count, recomputed here from the parameter shapes the sandbox lists; the
    summary's own count must agree (tied parameters are counted once in both)."""
    listed = sum(p.numel for p in parameters(ctx, model))
    if rows[0].params != listed or counted_parameters(rows) < listed:
        raise CheckFailed(f"Your model's parameter counts disagree (summary {rows[0].params}, "
                          f"parameter list {listed}): were parameters replaced during grading?")
    return listed


@check("torch.param_count")
def param_count(ctx: CheckContext) -> float | None:
    """At most ``max`` parameters (``trainable_only``: count requires_grad ones only).

    params: model, init_args, init_kwargs, input_shape (optional), max (int, inclusive),
    trainable_only (default false).
    """
    made, model, rows = stable_summary(ctx)
    limit = int(ctx.params["max"])
    trainable = bool(ctx.params.get("trainable_only", False))
    count = rows[0].trainable if trainable else _consistent(ctx, model, rows)
    what = "trainable parameters" if trainable else "parameters"
    if count > limit:
        def own(m: ModuleInfo) -> int:
            return sum(math.prod(s) for s in m.own.values())

        biggest = sorted((m for m in rows if m.own), key=own, reverse=True)[:3]
        listed = ", ".join(f"{m.label} ({m.short_type}, {own(m):,})" for m in biggest)
        raise CheckFailed(f"{made.class_name} has {count:,} {what}; the limit is {limit:,}. "
                          f"The largest layers: {listed}.")
    ctx.notes.append(f"{made.class_name} has {count:,} {what} (limit {limit:,}).")
    return None


def _type_matches(module: ModuleInfo, name: str) -> bool:
    """``"Linear"`` names a torch.nn type; a dotted name (``"transformer.PreLNEncoderLayer"``
    or ``"torch.nn.modules.linear.Linear"``) must equal the module's full type."""
    if "." in name:
        return module.type == name
    return is_torch_nn(module.type) and module.type.rsplit(".", 1)[1] == name


@check("torch.allowed_layers")
def allowed_layers(ctx: CheckContext) -> float | None:
    """Every leaf module is of an allowed torch.nn type, and no other module holds
    parameters of its own (that would be a hand-made layer).

    params: model, init_args, init_kwargs, input_shape (optional), allowed (torch.nn
    names such as "Linear"; containers, Identity and Flatten are always allowed),
    direct_parameters (default false: allow the student's own modules to hold
    nn.Parameters, e.g. a ViT's class token).
    """
    made, _, rows = stable_summary(ctx)
    allowed = [*ALWAYS_ALLOWED, *(str(a) for a in ctx.params["allowed"])]
    direct_ok = bool(ctx.params.get("direct_parameters", False))
    bad = [m for m in rows if (m.leaf and m.name) or is_torch_nn(m.type)]
    bad = [m for m in bad if not any(_type_matches(m, a) for a in allowed)]
    if not direct_ok:
        bad += [m for m in rows if m.own and not is_torch_nn(m.type) and m not in bad]
    if bad:
        listed = ", ".join(f"{m.label} ({m.short_type})" for m in bad[:6])
        own = [m for m in bad if m.own and not is_torch_nn(m.type)]
        extra = (" Modules of your own may not hold nn.Parameters directly here: build them "
                 "from the allowed layers." if own else "")
        raise CheckFailed(f"{made.class_name} uses layers that are not allowed: {listed}. "
                          f"Allowed: {', '.join(str(a) for a in ctx.params['allowed'])}.{extra}")
    used = sorted({m.short_type for m in rows if m.leaf and m.name})
    ctx.notes.append(f"{made.class_name} uses only allowed layers ({', '.join(used) or 'none'}).")
    return None


@check("torch.required_layers")
def required_layers(ctx: CheckContext) -> float | None:
    """At least ``min`` modules of each required kind.

    params: model, init_args, init_kwargs, input_shape (optional), required: a table
    ``{Label = ["Dropout", "Dropout2d"]}`` (at least one of those types) or
    ``{Label = {types = ["transformer.PreLNEncoderLayer"], min = 6}}``.
    """
    made, _, rows = stable_summary(ctx)
    missing = []
    for label, rule in dict(ctx.params["required"]).items():
        types = rule["types"] if isinstance(rule, dict) else rule
        wanted = int(rule.get("min", 1)) if isinstance(rule, dict) else 1
        found = sum(1 for m in rows if m.name and any(_type_matches(m, t) for t in types))
        if found < wanted:
            missing.append(f"{label} (needs {wanted}, found {found}; any of {', '.join(types)})")
    if missing:
        raise CheckFailed(f"{made.class_name} is missing required layers: {'; '.join(missing)}.")
    ctx.notes.append(f"{made.class_name} has every required layer.")
    return None


@check("torch.hidden_units")
def hidden_units(ctx: CheckContext) -> float | None:
    """The widths of the hidden Linear layers add up to at most ``max``.

    Hidden width = the sum of every Linear layer's output width minus the model's output
    width (the output layer's), read from the weight shapes. params: model, init_args,
    init_kwargs, input_shape (required), max.
    """
    made, model, rows = stable_summary(ctx)
    x = np.zeros((2, *[int(d) for d in ctx.params["input_shape"]]), dtype=np.float32)
    out = ctx.session.routine("torch_forward", model, [x], train=False, input_grads=False)
    outputs = out.get("output") if isinstance(out, dict) else None
    if not outputs or not isinstance(outputs[0], np.ndarray) or outputs[0].ndim != 2:
        raise CheckFailed(f"{made.class_name} should return scores of shape (batch, classes).")
    linear = [m for m in rows if _type_matches(m, "Linear") and "weight" in m.own]
    widths = [m.own["weight"][0] for m in linear]
    hidden = sum(widths) - int(outputs[0].shape[1])
    limit = int(ctx.params["max"])
    if hidden > limit:
        listed = ", ".join(f"{m.label}: {w}" for m, w in zip(linear, widths, strict=True))
        raise CheckFailed(f"{made.class_name} has {hidden} hidden units; the limit is {limit} "
                          f"(Linear output widths {listed}, minus the {outputs[0].shape[1]} "
                          f"outputs).")
    ctx.notes.append(f"{made.class_name} has {hidden} hidden units (limit {limit}).")
    return None


@check("torch.frozen_parameters")
def frozen_parameters(ctx: CheckContext) -> float | None:
    """Parameters matching ``frozen`` (glob patterns) have requires_grad False, those
    matching ``trainable`` True; with ``input_shape`` and ``classes``, one epoch of the
    grader's training on random data must leave the frozen ones unchanged.

    params: model, init_args, init_kwargs, frozen, trainable (optional), input_shape and
    classes (optional), lr (default 0.1).
    """
    made = Construction.from_params(ctx)
    model = made.build(ctx)
    rows = parameters(ctx, model)
    frozen = [p for p in rows if any(fnmatch.fnmatch(p.name, g) for g in ctx.params["frozen"])]
    trainable = [p for p in rows
                 if any(fnmatch.fnmatch(p.name, g) for g in ctx.params.get("trainable", []))]
    if not frozen:
        raise CheckFailed(f"{made.class_name} has no parameters matching "
                          f"{', '.join(ctx.params['frozen'])}.")
    still = [p.name for p in frozen if p.requires_grad]
    stuck = [p.name for p in trainable if not p.requires_grad]
    if still or stuck:
        parts = ([f"should be frozen (requires_grad=False): {', '.join(still)}"] if still else []
                 ) + ([f"should be trainable: {', '.join(stuck)}"] if stuck else [])
        raise CheckFailed(f"{made.class_name}: " + "; ".join(parts) + ".")
    if "input_shape" in ctx.params and "classes" in ctx.params:
        _frozen_after_training(ctx, model, [p.name for p in frozen])
    ctx.notes.append(f"{len(frozen)} parameters are frozen as required.")
    return None


def _frozen_after_training(ctx: CheckContext, model: Remote, names: list[str]) -> None:
    def values() -> dict[str, Any]:
        rows = ctx.session.routine("torch_parameters", model, True)
        return {r["name"]: r.get("value") for r in rows if isinstance(r, dict)}

    before = values()
    x = ctx.rng.standard_normal((32, *[int(d) for d in ctx.params["input_shape"]]))
    y = ctx.rng.integers(0, int(ctx.params["classes"]), 32)
    trainer = ctx.session.routine("torch_trainer", model, x.astype(np.float32), y,
                                  batch_size=8, lr=float(ctx.params.get("lr", 0.1)),
                                  optimizer="sgd", seed=int(ctx.rng.integers(2**31)))
    ctx.session.routine("torch_train_epoch", trainer)
    after = values()
    moved = [n for n in names if not _equal(before.get(n), after.get(n))]
    if moved:
        raise CheckFailed(f"These parameters changed during training although they are "
                          f"frozen: {', '.join(moved)}.")


def _equal(a: Any, b: Any) -> bool:
    return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and \
        bool(np.array_equal(a, b))


@check("torch.speed_ratio")
def speed_ratio(ctx: CheckContext) -> float | None:
    """``fast`` must be at least ``min_ratio`` times faster than ``slow`` (both the student's),
    timed here around plain forward calls on fresh inputs; median of per-repeat ratios. A
    module that falls short is timed once more before it fails (load on a shared host).

    params: fast ("conv.FasterConv2d"), slow ("conv.Conv2d"), init_args, init_kwargs,
    dims, inputs, min_ratio, repeats (default 5), method (default "forward"),
    values_rtol / values_atol for the agreement of the two outputs (1e-4 / 1e-5).
    The two modules get the same weights (the slow one's).

    ``baseline`` ({in_channels, out_channels, kernel_size, stride, padding, and optionally
    routine: one of ``BASELINES``}) also times the grader's own loop Conv2d
    (``sandbox.routines.torch_conv2d_loops`` unless ``routine`` says) in a fresh sandbox
    before any student code is imported, and requires ``fast`` to be ``baseline_ratio``
    (default ``min_ratio``) times faster than it too: a student who slows down ``slow``
    (a sleep in Conv2d) gains nothing (docs/security.md B11).
    """
    made = Construction.from_params(ctx, "slow")  # no student code is imported yet
    specs = input_specs(ctx.params["inputs"], made.dims)
    warm = [s.draw(ctx.rng) for s in specs]
    rounds = [[s.draw(ctx.rng) for s in specs] for _ in range(int(ctx.params.get("repeats", 5)))]
    baseline = _baseline_seconds(ctx, warm, rounds) if "baseline" in ctx.params else None
    slow, fast = made.build(ctx), made.build(ctx, str(ctx.params["fast"]))
    names = {p.name for p in parameters(ctx, fast)}
    state = {r["name"]: r["value"] for r in ctx.session.routine("torch_parameters", slow, True)
             if r.get("name") in names}
    ctx.session.routine("torch_load_parameters", fast, state)
    method = str(ctx.params.get("method", "forward"))

    def timed(module: Remote, inputs: list[np.ndarray]) -> tuple[float, Any]:
        started = time.perf_counter()
        out = ctx.session.routine("torch_forward", module, inputs, train=False,
                                  input_grads=False, method=method)
        return time.perf_counter() - started, out

    _, slow_out = timed(slow, warm)
    _, fast_out = timed(fast, warm)
    ctx.expect_array(f"{ctx.params['fast']} output", _first(fast_out), _first(slow_out),
                     context="the fast and the slow module on the same input")
    def measure() -> tuple[float, float]:
        """(median slow/fast ratio, median fast seconds) over ``rounds``."""
        ratios, fast_times = [], []
        for inputs in rounds:
            slow_s, _ = timed(slow, inputs)
            fast_s, _ = timed(fast, inputs)
            ratios.append(slow_s / max(fast_s, 1e-9))
            fast_times.append(fast_s)
        return statistics.median(ratios), statistics.median(fast_times)

    wanted = float(ctx.params["min_ratio"])
    required = float(ctx.params.get("baseline_ratio", wanted))
    ratio, fast_median = measure()
    if ratio < wanted or (baseline is not None and baseline / fast_median < required):
        # Once more before failing: a burst of load on a shared host (threads descheduled
        # mid-operation) can slow one round of timings; a slow module fails both.
        again, fast_again = measure()
        ratio, fast_median = max(ratio, again), min(fast_median, fast_again)
    summary_line = (f"{ctx.params['fast']} is {ratio:.1f}x faster than {ctx.params['slow']} "
                    f"(median of {len(rounds)}; required {wanted:g}x)")
    if ratio < wanted:
        raise CheckFailed(summary_line + ".")
    if baseline is not None:
        against = baseline / max(fast_median, 1e-9)
        line = (f"{ctx.params['fast']} is {against:.1f}x faster than the grader's own loop "
                f"Conv2d (required {required:g}x)")
        if against < required:
            raise CheckFailed(f"{line}, though {ratio:.1f}x faster than your "
                              f"{ctx.params['slow']}: the speed-up must come from "
                              f"{ctx.params['fast']} itself, not from a slow "
                              f"{ctx.params['slow']}.")
        summary_line += f"; {line}"
    ctx.notes.append(summary_line + ".")
    return None


def _baseline_seconds(ctx: CheckContext, warm: list[np.ndarray],
                      rounds: list[list[np.ndarray]]) -> float:
    """The median time of the grader's loop Conv2d on ``rounds`` (first input of each),
    in a fresh sandbox where no student code has been imported."""
    shape = dict(ctx.params["baseline"])
    kernel = int(shape["kernel_size"])
    weight = ctx.rng.normal(0.0, 0.1, (int(shape["out_channels"]), int(shape["in_channels"]),
                                       kernel, kernel)).astype(np.float32)
    bias = ctx.rng.normal(0.0, 0.1, int(shape["out_channels"])).astype(np.float32)
    session = ctx.fresh_session()
    options = {"stride": int(shape.get("stride", 1)), "padding": int(shape.get("padding", 0))}
    routine = str(shape.get("routine", "torch_conv2d_loops"))
    if routine not in BASELINES:
        raise ValueError(f"baseline.routine must be one of {', '.join(BASELINES)}")
    session.routine(routine, warm[0], weight, bias, **options)
    times = []
    for inputs in rounds:
        started = time.perf_counter()
        session.routine(routine, inputs[0], weight, bias, **options)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _first(result: Any) -> Any:
    outputs = result.get("output") if isinstance(result, dict) else None
    return outputs[0] if isinstance(outputs, list) and outputs else None
