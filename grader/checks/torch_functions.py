"""torch.function_compare: a student's function against a trusted one.

Arguments are crafted or drawn from the secret seed here; the student's function runs in
the sandbox (arrays become tensors there), the reference runs here, and the results are
compared with the layered comparison of ``grader.compare``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, field_validator

from grader.checks.torch_common import input_specs, load_trusted, resolve_dims, size
from grader.checks.torch_params import DIM_FORMS, dims_forms, target
from grader.compare import Mismatch
from grader.context import CheckContext
from grader.params import Tolerances
from grader.registry import check
from reference.matching import matching_variant


class FunctionCompareParams(Tolerances):
    """``torch.function_compare``: see its docstring."""

    function: str = Field(description="the student's function, \"file_module.function\"")
    reference: str = Field(description="the trusted function, \"package.module:function\" "
                           "or \"file.py:function\" in the assignment folder")
    cases: list[dict[str, Any]] = Field(description="calls to compare: {args = [...], "
                                        "kwargs = {...}} each")
    trials: int = Field(1, ge=1, description="how often each case is drawn again")
    tensors: bool = Field(True, description="arrays become tensors for both functions")
    dims: dict[str, Any] = Field(default_factory=dict, description="named sizes drawn per "
                                 f"trial from the secret seed: {DIM_FORMS}")
    variants: str | None = Field(None, description="known bugs that explain a mismatch: a key "
                                 "of reference.torch_bugs.FUNCTION_VARIANTS or \"module:ATTR\"")

    _function_target = field_validator("function")(target)
    _dims_forms = field_validator("dims")(dims_forms)

    @field_validator("cases")
    @classmethod
    def calls(cls, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, case in enumerate(cases):
            unknown = sorted(set(case) - {"args", "kwargs"})
            if unknown:
                raise ValueError(f"cases.{index}: unknown keys {unknown} (a case takes args "
                                 "and kwargs)")
        return cases


@check("torch.function_compare", params=FunctionCompareParams)
def function_compare(ctx: CheckContext) -> float | None:
    """A student's function against a trusted one on crafted and random arguments.

    params: ``function`` ("metrics.accuracy": file module + function), ``reference``
    ("reference.torch_layers:accuracy"), ``cases``: a list of ``{args = [...], kwargs =
    {...}}`` where each argument is a plain value, ``{array = [[...]], dtype = "float32"}``,
    ``{random = [shape], dtype = "float32" | "int64", low, high}``, ``{one_hot = [n,
    classes]}`` or ``{softmax = [n, classes]}`` (shapes may name ``dims``), ``trials``
    (how often each case is drawn again; default 1), ``tensors`` (default true: arrays
    become tensors for both functions), ``variants`` (a key of
    ``reference.torch_bugs.FUNCTION_VARIANTS`` or "module:ATTR": objects with ``hint`` and
    ``compute(*numpy_args)``), tolerances ``values_rtol`` / ``values_atol``.
    """
    params: FunctionCompareParams = ctx.params
    module_name, function_name = params.function.rsplit(".", 1)
    reference = load_trusted(params.reference, ctx.spec.folder)
    variants = _function_variants(ctx)
    tensors = params.tensors
    function = ctx.session.import_module(module_name).attr(function_name)
    for case in params.cases:
        for _ in range(params.trials):
            dims = resolve_dims(params.dims, ctx.rng)
            args = [_argument(a, dims, ctx.rng) for a in case.get("args", [])]
            kwargs = {k: _argument(v, dims, ctx.rng) for k, v in case.get("kwargs", {}).items()}
            if tensors:
                got = ctx.session.routine("torch_call", function, args, kwargs)
                want = _to_numpy(reference(*_tensors(args), **_tensors(kwargs)))
            else:
                got = function.call(*args, **kwargs)
                want = _to_numpy(reference(*args, **kwargs))
            shapes = ", ".join(str(np.shape(a)) for a in args)

            def hint(_: Mismatch, got: Any = got, args: list[Any] = args) -> str | None:
                found = matching_variant(variants, got, args)
                return found.hint if found else None

            ctx.expect_array(f"{function_name}(...)", _to_numpy(got), want, hint=hint,
                             context=f"{function_name} on arguments of shape {shapes}")
    return None


def _argument(spec: Any, dims: dict[str, int], rng: np.random.Generator) -> Any:
    if not isinstance(spec, dict):
        return spec
    if "array" in spec:
        return np.asarray(spec["array"], dtype=spec.get("dtype", "float32"))
    if "random" in spec:
        entry = {"shape": spec["random"], **{k: v for k, v in spec.items() if k != "random"}}
        return input_specs([entry], dims)[0].draw(rng)
    shape = spec.get("one_hot", spec.get("softmax"))
    if not isinstance(shape, list) or len(shape) != 2:
        raise ValueError(f"argument {spec!r}: expected array, random, one_hot or softmax")
    n, classes = (size(d, dims) for d in shape)
    if "one_hot" in spec:
        return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]
    logits = rng.standard_normal((n, classes))
    return (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)


def _tensors(value: Any) -> Any:
    import torch
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if isinstance(value, list):
        return [_tensors(v) for v in value]
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    return value


def _to_numpy(value: Any) -> Any:
    import torch
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    if isinstance(value, bool | np.bool_):
        return value
    if isinstance(value, int | float | np.number):
        return np.asarray(value, dtype=np.float64)
    return value


def _function_variants(ctx: CheckContext) -> list[Any]:
    params: FunctionCompareParams = ctx.params
    name = params.variants
    if not name:
        return []
    if ":" in str(name):
        return list(load_trusted(str(name), ctx.spec.folder))
    return list(load_trusted("reference.torch_bugs:FUNCTION_VARIANTS", ctx.spec.folder)[name])
