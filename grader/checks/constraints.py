"""Constraints on a student's PyTorch model: size, layer types, frozen parameters, speed.

A claim about a model counts only if the trusted side can verify it
(``grader.checks.torch_graph``): parameter counts, layer types, required layers, hidden
units and frozen parameters are read from the model's computation, recorded in the
sandbox on ``input_shape`` (or ``inputs``), validated and run by the grader, and bound to
the student's model on inputs it cannot predict. The module summary the sandbox reports
is still checked (layers that change during grading fail, G4; modules of the wrong type
fail ``torch.allowed_layers``), but only to be stricter, never to pass.

Every check here takes ``model`` / ``init_args`` / ``init_kwargs`` / ``dims`` (see
``grader.checks.torch_common``) and the verification parameters of ``torch_graph``
(``input_shape`` or ``inputs``, ``allowed`` with ``builtin_functions``, ``banned_ops``,
``frozen_ops``, ``max_stored``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field, field_validator

from grader.checks.torch_common import (
    Construction,
    ModuleInfo,
    input_specs,
    is_torch_nn,
    parameters,
    structure_changes,
    summary,
    warm_up,
)
from grader.checks.torch_graph import (
    Pass,
    Verified,
    check_rules,
    matching,
    record_inputs,
    verified,
)
from grader.checks.torch_params import (
    BuildsModel,
    RecordedInputs,
    TorchTolerances,
    Verification,
    inputs_forms,
    target,
)
from grader.checks.torch_params import (
    Construction as ConstructionParams,
)
from grader.compare import compare_array
from grader.context import CheckContext, CheckFailed
from grader.graph import ops
from grader.params import CheckParams
from grader.registry import check
from sandbox.session import Remote

ALWAYS_ALLOWED = ("Sequential", "ModuleList", "ModuleDict", "Identity", "Flatten")
# The trusted loop convolutions a speed check may time (sandbox.routines): one product per
# output position (the default), or the four nested loops of the EE 150 handout's hint.
BaselineRoutine = Literal["torch_conv2d_loops", "torch_conv2d_four_loops"]
BASELINES: tuple[str, ...] = get_args(BaselineRoutine)


class VerifiedModel(BuildsModel, RecordedInputs, Verification):
    """What every check of the model's structure reads: the model to build, what it is
    recorded on, and the verification of its computation."""


class ParamCountParams(VerifiedModel):
    max: int = Field(ge=0, description="the most parameters allowed (inclusive)")
    trainable_only: bool = Field(False, description="count only parameters that require "
                                 "gradients")


class AllowedLayersParams(VerifiedModel):
    allowed: list[str] = Field(description="torch.nn layer names the handout allows, e.g. "
                               "\"Linear\" (containers, Identity and Flatten always are)")
    direct_parameters: bool = Field(False, description="let the student's own modules hold "
                                    "nn.Parameters directly (e.g. a ViT's class token)")


class RequiredLayersParams(VerifiedModel):
    required: dict[str, Any] = Field(description="label -> the layer types of which one is "
                                     "required ([...], or {types = [...], min = N}), or "
                                     "{ops = [families], min = N}")

    @field_validator("required")
    @classmethod
    def rules(cls, required: dict[str, Any]) -> dict[str, Any]:
        for label, rule in required.items():
            if not (isinstance(rule, list) or (isinstance(rule, dict) and (
                    "types" in rule or "ops" in rule))):
                raise ValueError(f"required.{label}: expected a list of types, {{types = "
                                 "[...], min = N}} or {{ops = [...], min = N}}")
            _rule(label, rule)  # ValueError for unknown families or types
        return required


class HiddenUnitsParams(VerifiedModel):
    max: int = Field(ge=0, description="the most hidden units allowed, all hidden layers "
                     "together (inclusive)")


class FrozenParametersParams(VerifiedModel):
    frozen: list[str] = Field(description="globs of parameter names that must be frozen and "
                              "used")
    trainable: list[str] = Field(default_factory=list, description="globs of parameter names "
                                 "that must require gradients")


class Baseline(CheckParams):
    """The grader's own loop Conv2d that ``fast`` is timed against too."""

    in_channels: int = Field(ge=1, description="input channels")
    out_channels: int = Field(ge=1, description="output channels")
    kernel_size: int = Field(ge=1, description="square kernel size")
    stride: int = Field(1, ge=1, description="stride")
    padding: int = Field(0, ge=0, description="padding")
    routine: BaselineRoutine = Field("torch_conv2d_loops", description="the loop "
                                     "implementation timed (sandbox.routines)")


class SpeedRatioParams(ConstructionParams, TorchTolerances):
    fast: str = Field(description="the student's fast class, \"file_module.Class\"")
    slow: str = Field(description="the student's slow class, \"file_module.Class\"; both get "
                      "its weights")
    inputs: list[Any] = Field(description="the forward arguments: a shape each (sizes and "
                              "dim names) or {shape, dtype, low, high}")
    min_ratio: float = Field(gt=0, description="how many times faster fast must be than slow")
    repeats: int = Field(5, ge=1, description="timed rounds (the median ratio counts)")
    method: str = Field("forward", description="the modules' method that is timed")
    baseline: Baseline | None = Field(None, description="also time the grader's own loop "
                                      "Conv2d, in a fresh sandbox")
    baseline_ratio: float | None = Field(None, gt=0, description="how many times faster fast "
                                         "must be than the baseline (default min_ratio)")

    _targets = field_validator("fast", "slow")(target)
    _inputs_forms = field_validator("inputs")(inputs_forms)


def stable_summary(ctx: CheckContext) -> tuple[Construction, Remote, list[ModuleInfo]]:
    """Build, warm up, summarise, run again, summarise again; the two must agree (G4)."""
    made = Construction.from_params(ctx)
    model = made.build(ctx)
    warm_up(ctx, model)
    first = summary(ctx, model)
    warm_up(ctx, model)
    second = summary(ctx, model)
    changed = structure_changes(first, second)
    if changed:
        raise CheckFailed(changed)
    return made, model, second


def eval_pass(v: Verified, made: Construction, label: str) -> Pass:
    """The model's eval-mode computation, recorded, validated, bound and within the
    spec's rules."""
    found = v.record("eval", record_inputs(v.ctx, made.dims), train=False)
    v.bind("eval", record_inputs(v.ctx, made.dims, found.batch))
    check_rules(v.ctx, found, label)
    return found


def train_pass(v: Verified, made: Construction, label: str) -> Pass:
    found = v.record("train", record_inputs(v.ctx, made.dims), train=True)
    v.bind("train", record_inputs(v.ctx, made.dims, found.batch))
    check_rules(v.ctx, found, label)
    return found


def _module(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else "(the model itself)"


@check("torch.param_count", params=ParamCountParams)
def param_count(ctx: CheckContext) -> float | None:
    """At most ``max`` parameters (``trainable_only``: count requires_grad ones only),
    counted from the verified computation: every parameter it reads, plus any the model
    registers without using (``sum(p.numel() for p in model.parameters())`` counts those).

    params: model, init_args, init_kwargs, input_shape (or inputs), max (int, inclusive),
    trainable_only (default false), and torch_graph's verification parameters.
    """
    made, model, _ = stable_summary(ctx)
    with verified(ctx, model) as v:
        found = eval_pass(v, made, made.class_name)
    params: ParamCountParams = ctx.params
    limit, trainable = params.max, params.trainable_only
    count = int(found.facts["trainable_elements" if trainable else "param_elements"])
    what = "trainable parameters" if trainable else "parameters"
    if count > limit:
        sizes: dict[str, int] = defaultdict(int)
        for p in found.params:
            sizes[_module(p["name"])] += math.prod(p["shape"])
        biggest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
        listed = ", ".join(f"{name} ({size:,})" for name, size in biggest)
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


@check("torch.allowed_layers", params=AllowedLayersParams)
def allowed_layers(ctx: CheckContext) -> float | None:
    """Only the allowed layers: every operation of the verified computation that reaches
    the output is one the allowed layers compute (``builtin_functions = true`` adds
    arithmetic, matrix products and activations: "other PyTorch builtin functions"), and
    the module tree holds only allowed torch.nn types, no module of the student's own
    holding parameters directly (that would be a hand-made layer).

    params: model, init_args, init_kwargs, input_shape (or inputs), allowed (torch.nn
    names such as "Linear"; containers, Identity and Flatten are always allowed),
    builtin_functions (default false), direct_parameters (default false: allow the
    student's own modules to hold nn.Parameters, e.g. a ViT's class token).
    """
    params: AllowedLayersParams = ctx.params
    made, model, rows = stable_summary(ctx)
    allowed = [*ALWAYS_ALLOWED, *params.allowed]
    direct_ok = params.direct_parameters
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
                          f"Allowed: {', '.join(params.allowed)}.{extra}")
    with verified(ctx, model) as v:
        found = eval_pass(v, made, made.class_name)
        if _has_dropout_layer(rows):
            train_pass(v, made, f"{made.class_name} in train mode")
    used = sorted({ops.describe(f) for f in found.families.values() if f != "structural"})
    ctx.notes.append(f"{made.class_name} uses only allowed layers; its computation: "
                     f"{', '.join(used) or 'reshaping only'}.")
    return None


def _has_dropout_layer(rows: Sequence[ModuleInfo]) -> bool:
    return any("Dropout" in m.type for m in rows)


@check("torch.required_layers", params=RequiredLayersParams)
def required_layers(ctx: CheckContext) -> float | None:
    """At least ``min`` layers of each required kind, each used: for torch.nn layers
    (``Dropout``, ``BatchNorm2d``, ``Conv2d``, ...) counted in the verified train-mode
    computation as operations of that layer's family whose result changes the model's
    output (a dropout with p = 0, or one whose result is thrown away, does not count);
    ``ops`` rules count operations of the given families the same way. Types of the
    student's own (dotted names) are counted in the module summary.

    params: model, init_args, init_kwargs, input_shape (or inputs), required: a table
    ``{Label = ["Dropout", "Dropout2d"]}`` (at least one of those types),
    ``{Label = {types = ["transformer.PreLNEncoderLayer"], min = 6}}`` or
    ``{Label = {ops = ["softmax"], min = 48}}`` (families, grader.graph.ops).
    """
    made, model, rows = stable_summary(ctx)
    params: RequiredLayersParams = ctx.params
    rules = [_rule(label, rule) for label, rule in params.required.items()]
    missing = []
    with verified(ctx, model) as v:
        found = train_pass(v, made, f"{made.class_name} in train mode") if any(
            families for _, _, families, _ in rules) else None
        for label, types, families, wanted in rules:
            count, what = _count(v, found, rows, types, families, made.dims)
            if count < wanted:
                missing.append(f"{label} (needs {wanted}, found {count}; {what})")
    if missing:
        raise CheckFailed(f"{made.class_name} is missing required layers: {'; '.join(missing)}.")
    ctx.notes.append(f"{made.class_name} has every required layer, each used.")
    return None


def _rule(label: str, rule: Any) -> tuple[str, list[str], set[str], int]:
    """(label, the student's own types, families to count, min)."""
    wanted = int(rule.get("min", 1)) if isinstance(rule, dict) else 1
    if isinstance(rule, dict) and "ops" in rule:
        families = {str(f) for f in rule["ops"]}
        unknown = families - set(ops.FAMILIES)
        if unknown:
            raise ValueError(f"required.{label}.ops: unknown families {sorted(unknown)}")
        return label, [], families, wanted
    types = [str(t) for t in (rule["types"] if isinstance(rule, dict) else rule)]
    own = [t for t in types if "." in t]
    layers = [t for t in types if "." not in t]
    families = {f for t in layers for f in ops.LAYER_FAMILIES.get(t, frozenset())
                if f not in ("structural", "bias")}
    if own and layers:
        raise ValueError(f"required.{label}: mix of torch.nn layers and your own types")
    if layers and not families:
        raise ValueError(f"required.{label}: no computation known for {layers}")
    return label, own, families, wanted


def _count(v: Verified, found: Pass | None, rows: Sequence[ModuleInfo], types: list[str],
           families: set[str], dims: dict[str, int]) -> tuple[int, str]:
    if not families:
        count = sum(1 for m in rows if m.name and any(_type_matches(m, t) for t in types))
        return count, f"any of {', '.join(types)}"
    assert found is not None
    if "dropout" in families:
        probabilities = dict((int(i), float(p)) for i, p in found.facts["dropout"])
        nodes = [int(i) for i in found.facts["dropout_apply"]] if any(
            p > 0 for p in probabilities.values()) else []
    else:
        nodes = [i for i in sorted(found.families) if found.families[i] in families]
    nodes = nodes[:256]
    x = record_inputs(v.ctx, dims, found.batch)
    used = sum(v.influences("train", nodes, x)) if nodes else 0
    described = " or ".join(sorted(ops.describe(f) for f in families))
    return used, f"{described} that changes the output"


@check("torch.hidden_units", params=HiddenUnitsParams)
def hidden_units(ctx: CheckContext) -> float | None:
    """The hidden units of all hidden layers add up to at most ``max``: for each matrix
    product (or convolution) of the verified computation with a weight that does not
    depend on the input, its output elements per example; the last such layer is the
    output layer and does not count (CS 189: "your last Linear layer [does] not count").

    params: model, init_args, init_kwargs, input_shape (required), max.
    """
    made, model, _ = stable_summary(ctx)
    with verified(ctx, model) as v:
        found = eval_pass(v, made, made.class_name)
    shapes = found.facts["output_shapes"]
    if not shapes or len(shapes[0]) != 2:
        raise CheckFailed(f"{made.class_name} should return scores of shape (batch, classes).")
    layers = found.layers
    if not layers:
        raise CheckFailed(f"{made.class_name} has no layer with weights.")
    widths = [int(layer["width"]) for layer in layers]
    last = output_layer(widths, math.prod(shapes[0][1:]))
    hidden = sum(widths) - widths[last]
    params: HiddenUnitsParams = ctx.params
    limit = params.max
    names = [_layer_name(layer) for layer in layers]
    listed = ", ".join(f"{n}: {w}" for n, w in zip(names, widths, strict=True))
    if hidden > limit:
        raise CheckFailed(f"{made.class_name} has {hidden} hidden units; the limit is {limit} "
                          f"(layer widths per example {listed}; {names[last]} is the output "
                          f"layer).")
    ctx.notes.append(f"{made.class_name} has {hidden} hidden units (limit {limit}; "
                     f"{listed}).")
    return None


def output_layer(widths: Sequence[int], outputs: int) -> int:
    """The index of the output layer: the last layer as wide as the model's output (the
    last layer of all when none is)."""
    same = [i for i, w in enumerate(widths) if w == outputs]
    return same[-1] if same else len(widths) - 1


def _layer_name(layer: dict[str, Any]) -> str:
    params = sorted(layer["params"])
    return _module(params[0]) if params else str(layer["op"])


@check("torch.frozen_parameters", params=FrozenParametersParams)
def frozen_parameters(ctx: CheckContext) -> float | None:
    """Parameters matching ``frozen`` (glob patterns) are frozen and used by the verified
    computation, those matching ``trainable`` require gradients; ``frozen_ops`` (e.g.
    ["convolution"]) also requires every weight of those operations to be frozen, so
    that filters hung on another module cannot be trained instead. The grader's own
    training (torch.accuracy) never updates a frozen parameter.

    params: model, init_args, init_kwargs, input_shape (or inputs), frozen, trainable
    (optional), frozen_ops (optional).
    """
    made, model, _ = stable_summary(ctx)
    with verified(ctx, model) as v:
        found = eval_pass(v, made, made.class_name)
        train_pass(v, made, f"{made.class_name} in train mode")
    names = [p["name"] for p in found.params]
    grad = {p["name"]: bool(p["requires_grad"]) for p in found.params}
    params: FrozenParametersParams = ctx.params
    frozen = matching(names, params.frozen)
    trainable = matching(names, params.trainable)
    if not frozen:
        raise CheckFailed(f"{made.class_name} has no parameters matching "
                          f"{', '.join(params.frozen)} that its computation uses.")
    still = [n for n in frozen if grad[n]]
    stuck = [n for n in trainable if not grad[n]]
    if still or stuck:
        parts = ([f"should be frozen (requires_grad=False): {', '.join(still)}"] if still else []
                 ) + ([f"should be trainable: {', '.join(stuck)}"] if stuck else [])
        raise CheckFailed(f"{made.class_name}: " + "; ".join(parts) + ".")
    used = {p for layer in found.layers for p in layer["params"]}
    unused = [n for n in frozen if n not in used]
    if unused:
        raise CheckFailed(f"{made.class_name}: {', '.join(unused)} are frozen but no layer "
                          f"of forward() uses them.")
    ctx.notes.append(f"{len(frozen)} parameters are frozen as required.")
    return None


@check("torch.speed_ratio", params=SpeedRatioParams)
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
    params: SpeedRatioParams = ctx.params
    made = Construction.from_params(ctx, "slow")  # no student code is imported yet
    specs = input_specs(params.inputs, made.dims)
    warm = [s.draw(ctx.rng) for s in specs]
    repeats = params.repeats
    rounds = [[s.draw(ctx.rng) for s in specs] for _ in range(repeats)]
    baseline = (_baseline_seconds(ctx, params.baseline, warm, rounds)
                if params.baseline is not None else None)
    slow, fast = made.build(ctx), made.build(ctx, params.fast)
    names = {p.name for p in parameters(ctx, fast)}
    state = {r["name"]: r["value"] for r in ctx.session.routine("torch_parameters", slow, True)
             if r.get("name") in names}
    ctx.session.routine("torch_load_parameters", fast, state)
    method = params.method

    def timed(module: Remote, inputs: list[np.ndarray]) -> tuple[float, Any]:
        started = time.perf_counter()
        out = ctx.session.routine("torch_forward", module, inputs, train=False,
                                  input_grads=False, method=method)
        return time.perf_counter() - started, out

    tolerance = ctx.tolerance("values")
    timed(slow, warm)  # warm-up: first calls pay for lazy initialisation
    timed(fast, warm)

    def measure() -> tuple[float, float]:
        """(median slow/fast ratio, median fast seconds) over ``rounds``: in each, ``fast``
        first, on inputs nobody has seen, then ``slow`` on the same; every output of
        ``fast`` must match ``slow``'s (a cache of earlier answers has nothing to give)."""
        ratios, fast_times = [], []
        for inputs in rounds:
            fast_s, fast_out = timed(fast, inputs)
            slow_s, slow_out = timed(slow, inputs)
            mismatch = compare_array(f"{params.fast} output", _first(fast_out),
                                     _first(slow_out), tolerance, detailed=ctx.detailed)
            if mismatch is not None:
                raise CheckFailed(f"the fast and the slow module on the same timed input: "
                                  f"{mismatch.message}")
            ratios.append(slow_s / max(fast_s, 1e-9))
            fast_times.append(fast_s)
        return statistics.median(ratios), statistics.median(fast_times)

    wanted = params.min_ratio
    required = params.baseline_ratio if params.baseline_ratio is not None else wanted
    ratio, fast_median = measure()
    if ratio < wanted or (baseline is not None and baseline / fast_median < required):
        # Once more before failing: a burst of load on a shared host (threads descheduled
        # mid-operation) can slow one round of timings; a slow module fails both.
        rounds = [[s.draw(ctx.rng) for s in specs] for _ in range(repeats)]
        again, fast_again = measure()
        ratio, fast_median = max(ratio, again), min(fast_median, fast_again)
    summary_line = (f"{params.fast} is {ratio:.1f}x faster than {params.slow} "
                    f"(median of {len(rounds)}; required {wanted:g}x)")
    if ratio < wanted:
        raise CheckFailed(summary_line + ".")
    if baseline is not None:
        against = baseline / max(fast_median, 1e-9)
        line = (f"{params.fast} is {against:.1f}x faster than the grader's own loop "
                f"Conv2d (required {required:g}x)")
        if against < required:
            raise CheckFailed(f"{line}, though {ratio:.1f}x faster than your "
                              f"{params.slow}: the speed-up must come from "
                              f"{params.fast} itself, not from a slow "
                              f"{params.slow}.")
        summary_line += f"; {line}"
    ctx.notes.append(summary_line + ".")
    return None


def _baseline_seconds(ctx: CheckContext, shape: Baseline, warm: list[np.ndarray],
                      rounds: list[list[np.ndarray]]) -> float:
    """The median time of the grader's loop Conv2d on ``rounds`` (first input of each),
    in a fresh sandbox where no student code has been imported."""
    kernel = shape.kernel_size
    weight = ctx.rng.normal(0.0, 0.1, (shape.out_channels, shape.in_channels,
                                       kernel, kernel)).astype(np.float32)
    bias = ctx.rng.normal(0.0, 0.1, shape.out_channels).astype(np.float32)
    session = ctx.fresh_session()
    options = {"stride": shape.stride, "padding": shape.padding}
    routine = shape.routine
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
