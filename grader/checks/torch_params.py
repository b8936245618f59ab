"""The params the ``torch.*`` checks share, each defined once (``grader.params``), and
``torch.module_compare``'s (which course checks extend; no torch import here): what
to build (:class:`Construction`, :class:`BuildsModel`, :class:`BuildsModule`), what the
model is recorded on (:class:`RecordedInputs`), and the verification of its computation
(:class:`Verification`, ``grader.checks.torch_graph``). A check's own model subclasses the
pieces it reads; the forms are described in ``grader.checks.torch_common``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from grader.graph import ops
from grader.params import CheckParams, Tolerances

Quantity = Literal["output", "input_grads", "param_grads"]
Mode = Literal["eval", "train"]
QUANTITIES: tuple[Quantity, ...] = ("output", "input_grads", "param_grads")
DIM_FORMS = "an int, [lo, hi], {choose = [...]} or a product of earlier dims 'a * b'"
INPUT_DTYPES = ("float32", "float64", "int64", "bool")


def target(value: str) -> str:
    """``"file_module.Class"``: the last dot separates the class."""
    if "." not in value:
        raise ValueError(f"must look like 'file.Class', got {value!r}")
    return value


def dims_forms(value: dict[str, Any]) -> dict[str, Any]:
    for name, form in value.items():
        fixed = isinstance(form, int) and not isinstance(form, bool)
        ranged = isinstance(form, list) and len(form) == 2
        chosen = isinstance(form, dict) and isinstance(form.get("choose"), list) and bool(
            form["choose"])
        if not (fixed or ranged or chosen or isinstance(form, str)):
            raise ValueError(f"dims.{name}: expected {DIM_FORMS}, got {form!r}")
    return value


def inputs_forms(value: list[Any] | None) -> list[Any] | None:
    for index, entry in enumerate(value or []):
        if isinstance(entry, dict):
            if not isinstance(entry.get("shape"), list):
                raise ValueError(f"inputs.{index}: a table needs shape = [...]")
            unknown = sorted(set(entry) - {"shape", "dtype", "low", "high"})
            if unknown:
                raise ValueError(f"inputs.{index}: unknown keys {unknown} (it takes shape, "
                                 "dtype, low, high)")
            if str(entry.get("dtype", "float32")) not in INPUT_DTYPES:
                raise ValueError(f"inputs.{index}.dtype must be one of {list(INPUT_DTYPES)}")
        elif not isinstance(entry, list):
            raise ValueError(f"inputs.{index}: expected a shape (a list of sizes) or a table "
                             f"{{shape, dtype, low, high}}, got {entry!r}")
    return value


def _families(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(ops.FAMILIES))
    if unknown:
        raise ValueError(f"unknown families {unknown}; known: {sorted(ops.FAMILIES)}")
    return value


class Construction(CheckParams):
    """The constructor's arguments, with sizes drawn per attempt."""

    init_args: list[Any] = Field(default_factory=list, description="the constructor's "
                                 "positional arguments; a string \"$name\" is the dim name")
    init_kwargs: dict[str, Any] = Field(default_factory=dict, description="the "
                                        "constructor's keyword arguments (\"$name\" as above)")
    dims: dict[str, Any] = Field(default_factory=dict, description="named sizes drawn per "
                                 f"attempt from the secret seed: {DIM_FORMS}")

    _dims_forms = field_validator("dims")(dims_forms)


class BuildsModel(Construction):
    """The student's model to build: ``model`` (``module`` is accepted too)."""

    model: str = Field(validation_alias=AliasChoices("model", "module"), description="the "
                       "student's class, \"file_module.Class\", e.g. \"cnn.CNN\"")

    _model_target = field_validator("model")(target)


class BuildsModule(Construction):
    """The student's module to build: ``module``."""

    module: str = Field(description="the student's class, \"file_module.Class\", e.g. "
                        "\"attention.SingleHeadAttention\"")

    _module_target = field_validator("module")(target)


class Verification(CheckParams):
    """The verification of the model's computation (``grader.checks.torch_graph``)."""

    allowed: list[str] | None = Field(None, description="torch.nn layer names the handout "
                                      "allows: every operation that reaches the output must "
                                      "be one of theirs")
    builtin_functions: bool = Field(False, description="with allowed: also arithmetic, "
                                    "matrix products and activations (\"other PyTorch "
                                    "builtin functions\")")
    banned_ops: list[str] = Field(default_factory=list, description="operation families "
                                  "(grader.graph.ops) no operation reaching the output may "
                                  "belong to")
    banned_reason: str = Field("That is not allowed here", description="the sentence a "
                               "banned operation's failure ends with")
    frozen_ops: list[str] = Field(default_factory=list, description="operation families "
                                  "whose weight parameters must all be frozen")
    max_stored: int = Field(4096, ge=0, description="stored numbers, not parameters, that "
                            "layers' weights may be computed from")
    bind_rtol: float = Field(1e-3, ge=0, description="relative tolerance of the sandbox's "
                             "model against the rebuilt computation")
    bind_atol: float = Field(1e-4, ge=0, description="absolute tolerance of the sandbox's "
                             "model against the rebuilt computation")
    verify_timeout_s: float | None = Field(None, gt=0, description="seconds for each step "
                                           "of the verification (default: the test's "
                                           "timeout_s, at least 60)")

    _known_families = field_validator("banned_ops", "frozen_ops")(_families)

    @field_validator("allowed")
    @classmethod
    def known_layers(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            ops.families_of_layers(value, False)  # ValueError: unknown layer names
        return value


class RecordedInputs(CheckParams):
    """What the model is recorded and bound on: ``input_shape`` or ``inputs``."""

    input_shape: list[int] | None = Field(None, description="one example's shape, e.g. "
                                          "[1, 28, 28]")
    inputs: list[Any] | None = Field(None, description="the forward arguments: a shape each "
                                     "(sizes and dim names) or {shape, dtype, low, high}")
    record_batch: int = Field(4, ge=1, description="examples of input_shape per recorded "
                              "batch")

    _input_forms = field_validator("inputs")(inputs_forms)

    @model_validator(mode="after")
    def something_to_record(self) -> RecordedInputs:
        if self.input_shape is None and self.inputs is None:
            raise ValueError("this check verifies the model's computation: give input_shape "
                             "(one example's shape) or inputs")
        return self


class TorchTolerances(Tolerances):
    """The tolerances of a float32 module against the float64 reference."""

    values_rtol: float = Field(1e-4, ge=0, description="relative tolerance for outputs")
    values_atol: float = Field(1e-5, ge=0, description="absolute tolerance for outputs")
    gradients_rtol: float = Field(1e-3, ge=0, description="relative tolerance for gradients")
    gradients_atol: float = Field(1e-5, ge=0, description="absolute tolerance for gradients")


class ModuleCompareParams(BuildsModule, TorchTolerances, Verification):
    """``torch.module_compare``: see its docstring."""

    reference: str = Field(description="the trusted reference class, \"package.module:Class\" "
                           "or \"file.py:Class\" in the assignment folder")
    accept: list[str] = Field(default_factory=list, description="other trusted references "
                              "that count as correct too")
    reference_init_kwargs: dict[str, Any] = Field(default_factory=dict, description="extra "
                                                  "keyword arguments for the reference only")
    inputs: list[Any] = Field(default_factory=list, description="the forward arguments: a "
                              "shape each (sizes and dim names) or {shape, dtype, low, high}")
    modes: list[Mode] = Field(default_factory=lambda: list[Mode](["eval"]),
                              description="the modes compared: eval, train")
    compare: list[Quantity] = Field(default_factory=lambda: list(QUANTITIES),
                                    description="what is compared: output, input_grads, "
                                    "param_grads")
    method: str = Field("forward", description="the module's method that is called")
    trials: int = Field(1, ge=1, description="attempts, each with fresh dims and inputs")
    variants: str | None = Field(None, description="known bugs that explain a mismatch: a "
                                 "key of reference.torch_bugs.VARIANTS or \"module:ATTR\"")
    verify: bool = Field(False, description="record and verify the module's computation "
                         "even without banned_ops, allowed or frozen_ops")

    _inputs_forms = field_validator("inputs")(inputs_forms)
