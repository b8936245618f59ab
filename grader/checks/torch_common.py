"""Trusted-side helpers shared by the PyTorch checks (no checks are registered here).

Parameter conventions shared by every ``torch.*`` check (their models, each defined once,
are in ``grader.checks.torch_params``):

* ``model`` / ``module``: ``"file_module.Class"`` in the handin, e.g. ``"cnn.CNN"`` or
  ``"attention.SingleHeadAttention"`` (the last dot separates the class).
* ``init_args`` (list) / ``init_kwargs`` (table): constructor arguments. A string
  ``"$name"`` is replaced by the dimension ``name`` (see ``dims``).
* ``dims``: named sizes drawn per attempt from the secret seed: an int (fixed),
  ``[lo, hi]`` (uniform, inclusive), ``{choose = [8, 16]}``, or a product of earlier
  names and ints as a string, ``"heads * d_head"``.
* ``inputs``: one entry per forward argument: a shape (list of ints and dim names), or a
  table ``{shape = [...], dtype = "float32" | "int64" | "bool", low = 0, high = "vocab"}``.
  Floating inputs are standard normal; integer ones uniform in [low, high).
* ``input_shape``: the shape of one example, e.g. ``[1, 28, 28]`` (checks that run the
  model once before summarising it feed a batch of 2 zeros-and-noise examples).

Everything the sandbox reports is validated here before use: it can be forged.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from grader.checks.torch_params import Construction as ConstructionParams
from grader.checks.torch_params import RecordedInputs
from grader.context import CheckContext, CheckFailed
from grader.registry import folder_module
from sandbox.session import Remote

DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "bool": np.bool_}


# -------------------------------------------------------------------------- dims and args


def resolve_dims(spec: Mapping[str, Any], rng: np.random.Generator) -> dict[str, int]:
    """Named sizes for one attempt (see the module docstring for the forms)."""
    dims: dict[str, int] = {}
    for name, form in spec.items():
        dims[name] = _dim(name, form, dims, rng)
    return dims


def _dim(name: str, form: Any, dims: Mapping[str, int], rng: np.random.Generator) -> int:
    if isinstance(form, bool):
        raise ValueError(f"dims.{name}: expected an int, [lo, hi], {{choose}} or a product")
    if isinstance(form, int):
        return form
    if isinstance(form, list) and len(form) == 2:
        return int(rng.integers(int(form[0]), int(form[1]) + 1))
    if isinstance(form, dict) and isinstance(form.get("choose"), list) and form["choose"]:
        return int(form["choose"][int(rng.integers(len(form["choose"])))])
    if isinstance(form, str):
        return math.prod(size(factor.strip(), dims) for factor in form.split("*"))
    raise ValueError(f"dims.{name}: expected an int, [lo, hi], {{choose = [...]}} or 'a * b'")


def size(value: Any, dims: Mapping[str, int]) -> int:
    """An int, or the name of a dim ("$" prefix optional)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        key = value.strip().removeprefix("$")
        if key.lstrip("-").isdigit():
            return int(key)
        if key in dims:
            return dims[key]
    raise ValueError(f"unknown size {value!r} (known dims: {', '.join(dims) or 'none'})")


def substitute(value: Any, dims: Mapping[str, int]) -> Any:
    """Constructor arguments with "$name" strings replaced by their dims."""
    if isinstance(value, str) and value.startswith("$"):
        return size(value, dims)
    if isinstance(value, list):
        return [substitute(v, dims) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, dims) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: int = 0
    high: int = 2

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        if self.dtype == "bool":
            return rng.random(self.shape) < 0.5
        if self.dtype.startswith("int"):
            return rng.integers(self.low, self.high, self.shape).astype(DTYPES[self.dtype])
        return rng.standard_normal(self.shape).astype(DTYPES[self.dtype])


def input_specs(entries: Sequence[Any], dims: Mapping[str, int]) -> list[InputSpec]:
    specs = []
    for entry in entries:
        if isinstance(entry, dict):
            dtype = str(entry.get("dtype", "float32"))
            if dtype not in DTYPES:
                raise ValueError(f"input dtype {dtype!r} is not one of {sorted(DTYPES)}")
            specs.append(InputSpec(tuple(size(d, dims) for d in entry["shape"]), dtype,
                                   size(entry.get("low", 0), dims),
                                   size(entry.get("high", 2), dims)))
        else:
            specs.append(InputSpec(tuple(size(d, dims) for d in entry)))
    return specs


@dataclass(frozen=True)
class Construction:
    """What to build and with which arguments, resolved for one attempt."""

    target: str
    args: list[Any]
    kwargs: dict[str, Any]
    dims: dict[str, int]

    @classmethod
    def from_params(cls, ctx: CheckContext, key: str = "model") -> Construction:
        """The class named by the params' ``key`` (``model``, ``module``, ``slow``, ...:
        a "file.Class" field of the check's model) with its arguments for one attempt."""
        params: ConstructionParams = ctx.params
        target = str(getattr(params, key))
        dims = resolve_dims(params.dims, ctx.rng)
        return cls(target, list(substitute(params.init_args, dims)),
                   dict(substitute(params.init_kwargs, dims)), dims)

    @property
    def class_name(self) -> str:
        return self.target.rsplit(".", 1)[1]

    def describe(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.class_name}({', '.join(parts)})"

    def build(self, ctx: CheckContext, target: str | None = None) -> Remote:
        """Construct the student's class in the sandbox."""
        module_name, class_name = (target or self.target).rsplit(".", 1)
        cls = ctx.session.import_module(module_name).attr(class_name)
        if not isinstance(cls, Remote):
            raise CheckFailed(f"{module_name}.{class_name} should be a class, got {cls!r}")
        built = cls.call(*self.args, **self.kwargs)
        if not isinstance(built, Remote):
            raise CheckFailed(f"{class_name}(...) returned {built!r}, not a module")
        return built


def load_trusted(path: str, folder: Path) -> Any:
    """``"package.module:attr"`` imported here, or ``"file.py:attr"`` from the assignment
    folder (trusted staff code; never anything from a handin). A folder's file is imported
    as its checks.py imports it (:func:`grader.registry.folder_module`): once, as a module
    of the folder, so that its relative imports work (``from .layers import X`` in the
    bug variants of ``layers.py``'s classes) and a reference and its variants share it."""
    module_path, _, attr = path.partition(":")
    if not attr:
        raise ValueError(f"{path!r}: expected 'module:attribute'")
    if module_path.endswith(".py"):
        parts = PurePosixPath(module_path.removesuffix(".py")).parts
        if not parts or module_path.startswith("/") or ".." in parts:
            raise ValueError(f"{path!r}: a file of the assignment folder, e.g. 'layers.py:X'")
        module = folder_module(folder, ".".join(parts))
    else:
        module = importlib.import_module(module_path)
    value = module
    for part in attr.split("."):
        value = getattr(value, part)
    return value


# -------------------------------------------------------------------------- sandbox reports


@dataclass(frozen=True)
class ParamInfo:
    name: str
    shape: tuple[int, ...]
    requires_grad: bool

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    type: str
    params: int
    trainable: int
    own: dict[str, tuple[int, ...]]
    leaf: bool
    config: dict[str, Any]

    @property
    def short_type(self) -> str:
        """``Linear`` for torch.nn types; the full ``file.Class`` for anything else."""
        return self.type.rsplit(".", 1)[1] if is_torch_nn(self.type) else self.type

    @property
    def label(self) -> str:
        return self.name or "(the model itself)"


def is_torch_nn(type_name: str) -> bool:
    return type_name.startswith("torch.nn.")


def _malformed(what: str) -> CheckFailed:
    return CheckFailed(f"The sandbox returned a malformed {what} (was the grader's routine "
                       "replaced?). This test gets no points.")


def _shape(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(type(d) is int and d >= 0 for d in value):
        raise _malformed(what)
    return tuple(value)


def parameters(ctx: CheckContext, model: Remote) -> list[ParamInfo]:
    rows = ctx.session.routine("torch_parameters", model)
    if not isinstance(rows, list):
        raise _malformed("parameter list")
    found = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("name"), str):
            raise _malformed("parameter list")
        found.append(ParamInfo(row["name"], _shape(row.get("shape"), "parameter list"),
                               row.get("requires_grad") is True))
    return found


def summary(ctx: CheckContext, model: Remote) -> list[ModuleInfo]:
    rows = ctx.session.routine("torch_summary", model)
    if not isinstance(rows, list) or not rows:
        raise _malformed("module summary")
    found = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("own"), dict):
            raise _malformed("module summary")
        name, kind = row.get("name"), row.get("type")
        params, trainable = row.get("params"), row.get("trainable")
        if not (isinstance(name, str) and isinstance(kind, str) and type(params) is int
                and type(trainable) is int and isinstance(row.get("config"), dict)):
            raise _malformed("module summary")
        own = {str(k): _shape(v, "module summary") for k, v in row["own"].items()}
        found.append(ModuleInfo(name, kind, params, trainable, own, row.get("leaf") is True,
                                dict(row["config"])))
    if any(m.params < 0 for m in found):
        raise CheckFailed("Your model still has uninitialised (lazy) parameters after a "
                          "forward pass; give every layer its sizes in __init__.")
    return found


def counted_parameters(rows: Sequence[ModuleInfo]) -> int:
    """The parameter count recomputed here from the shapes each module holds directly."""
    return sum(math.prod(shape) for m in rows for shape in m.own.values())


def warm_up(ctx: CheckContext, model: Remote) -> None:
    """Run one forward pass on a small batch so lazy layers get their shapes."""
    params: RecordedInputs = ctx.params
    shape = params.input_shape
    if shape is None:
        return
    x = (ctx.rng.random((2, *[int(d) for d in shape])) * 0.1).astype(np.float32)
    ctx.session.routine("torch_forward", model, [x], train=False, input_grads=False)


def structure_changes(before: Sequence[ModuleInfo], after: Sequence[ModuleInfo]) -> str | None:
    """A sentence when the module tree or its parameter shapes changed, else None (G4)."""
    old = {(m.name, m.type): m.own for m in before}
    new = {(m.name, m.type): m.own for m in after}
    if old == new:
        return None
    added = sorted(f"{n or '(root)'} ({t.rsplit('.', 1)[-1]})" for n, t in set(new) - set(old))
    removed = sorted(f"{n or '(root)'} ({t.rsplit('.', 1)[-1]})" for n, t in set(old) - set(new))
    parts = [f"added {', '.join(added)}" if added else "",
             f"removed {', '.join(removed)}" if removed else ""]
    detail = "; ".join(p for p in parts if p) or "parameter shapes changed"
    return (f"Your model's layers changed while it was being graded ({detail}): the grader "
            f"summarises the model more than once, and every summary must agree. Build every "
            f"layer in __init__ and do not add or resize layers later.")
