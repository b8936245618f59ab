"""Typed check parameters: what a test's ``[tests.params]`` may hold, declared per check.

A check declares a model of its params with ``@check(name, params=Model)``; the model is a
:class:`CheckParams` (unknown keys are errors, instances are frozen), each field with its
type, today's default and a ``Field(description=...)`` that says what it does::

    class Forward(CheckParams):
        trials: int = Field(3, ge=1, description="draws of sizes and inputs")

    @check("hw3.rnn_forward", params=Forward)
    def rnn_forward(ctx: CheckContext) -> None:
        params: Forward = ctx.params
        for _ in range(params.trials): ...

Shared pieces are defined once and mixed in by subclassing (:class:`Tolerances` here,
the torch checks' construction and verification keys in ``grader.checks.torch_params``).

Every spec is checked where its checks are resolved (:func:`check_params`: uploading or
adding a folder, ``dlgrade assignments verify``, before a grading): each test's params,
after the ``[defaults]`` merge and in every handout version, must fit its check's model,
else a :class:`~grader.spec.SpecError` says which test, which key and which check.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from grader import registry
from grader.compare import GRADIENTS, VALUES
from grader.spec import AssignmentSpec, SpecError, TestSpec


class CheckParams(BaseModel):
    """The base of every check's params model: a key it does not declare is an error, and
    the validated params cannot be changed by a check."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Tolerances(CheckParams):
    """The four tolerance keys of every check that compares arrays (``ctx.expect_array``,
    ``ctx.tolerance(kind)``): ``np.allclose``'s rtol and atol, for values and gradients."""

    values_rtol: float = Field(VALUES.rtol, ge=0, description="relative tolerance for "
                               "compared values (outputs)")
    values_atol: float = Field(VALUES.atol, ge=0, description="absolute tolerance for "
                               "compared values (outputs)")
    gradients_rtol: float = Field(GRADIENTS.rtol, ge=0, description="relative tolerance for "
                                  "compared gradients")
    gradients_atol: float = Field(GRADIENTS.atol, ge=0, description="absolute tolerance for "
                                  "compared gradients")


class ParamsError(SpecError):
    """One test's params do not fit its check; the message is a sentence per problem."""


# -------------------------------------------------------------------------- one test


def typed(test: TestSpec, folder: Path | None) -> Any:
    """``test.params`` as its check reads them: an instance of the check's model, or the
    plain dict for a check that declared none (or that is not registered). ParamsError
    when they do not fit."""
    try:
        declared = registry.declared(test.check, folder)
    except KeyError:
        return test.params
    if declared is None:
        return test.params
    own, _ = _split(declared, test.params, test.defaulted_params)
    try:
        return declared.model.model_validate(own)
    except ValidationError:
        found = list(_problems(test.check, test.params, folder, test.defaulted_params))
        raise ParamsError(f"test {test.name!r}, check {test.check!r}: " + "; ".join(found)
                          ) from None


def wrapped(test: TestSpec, folder: Path | None) -> TestSpec:
    """For a check registered with ``wraps=KEY``: the test as the check it wraps sees it
    (that check's name, and the params that are not the wrapper's own)."""
    declared = registry.declared(test.check, folder)
    if declared is None or declared.wraps is None:
        raise ValueError(f"check {test.check!r} does not wrap another check")
    own, rest = _split(declared, test.params, test.defaulted_params)
    defaulted = tuple(k for k in test.defaulted_params if k in rest)
    return test.model_copy(update={"check": str(own[declared.wraps]), "params": rest,
                                   "defaulted_params": defaulted})


def _split(declared: registry.Declared, params: dict[str, Any], defaulted: Iterable[str] = ()
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the model's keys, the rest for the check it wraps). Without a wrapped check, every
    key is the model's but those from [defaults.params] (``defaulted``) it does not take."""
    keys = set(_keys(declared.model))
    if declared.wraps is None:
        dropped = set(defaulted) - keys
        return {k: v for k, v in params.items() if k not in dropped}, {}
    return ({k: v for k, v in params.items() if k in keys},
            {k: v for k, v in params.items() if k not in keys})


def _problems(check: str, params: dict[str, Any], folder: Path | None,
              defaulted: Iterable[str] = (), outer: str = "") -> Iterator[str]:
    """What is wrong with ``params`` for the check ``check`` and any check it wraps
    (``outer``: the wrapping checks' keys, which an unknown key's sentence lists too)."""
    declared = registry.declared(check, folder)
    if declared is None:
        return
    own, rest = _split(declared, params, defaulted)
    keys = _keys(declared.model, shown=True)
    takes = outer + ", ".join(keys)
    try:
        declared.model.model_validate(own)
    except ValidationError as exc:
        yield from _sentences(exc, declared.model, takes or "no params",
                              _keys(declared.model))
    if declared.wraps is None or not isinstance(own.get(declared.wraps), str):
        return
    inner = own[declared.wraps]
    try:
        registry.declared(inner, folder)
    except KeyError:
        yield (f"params.{declared.wraps}: {inner!r} is neither a built-in check nor one "
               "defined in checks.py")
        return
    yield from _problems(inner, rest, folder, defaulted, f"{takes}, and for {inner}: ")


def _taken(check: str, params: dict[str, Any], folder: Path | None) -> set[str] | None:
    """The keys the check (and any check it wraps) takes; None: any (a plain dict)."""
    try:
        declared = registry.declared(check, folder)
    except KeyError:
        return None
    if declared is None:
        return None
    keys = set(_keys(declared.model))
    inner = params.get(declared.wraps) if declared.wraps else None
    if not isinstance(inner, str):
        return keys
    more = _taken(inner, params, folder)
    return None if more is None else keys | more


def _keys(model: type[CheckParams], shown: bool = False) -> list[str]:
    """The keys a model takes, as spec.toml spells them, in order (``shown``: one entry per
    field, ``model (or module)``)."""
    keys = []
    for name, field in model.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None)
        if choices:
            spelled = [str(c) for c in choices]
            keys += [f"{spelled[0]} (or {', '.join(spelled[1:])})"] if shown else spelled
        else:
            keys.append(field.alias or name)
    return sorted(keys)


def _sentences(exc: ValidationError, model: type[CheckParams], takes: str,
               spelled: list[str]) -> list[str]:
    by_key: dict[str, list[ErrorDetails]] = {}
    for error in exc.errors():
        by_key.setdefault(str(error["loc"][0]) if error["loc"] else "", []).append(error)
    return [_sentence(key, errors, model, takes, spelled) for key, errors in by_key.items()]


def _sentence(key: str, errors: list[ErrorDetails], model: type[CheckParams],
              takes: str, spelled: list[str]) -> str:
    first = errors[0]
    message = first["msg"].removeprefix("Value error, ")
    if not key:  # a rule over several keys
        return f"params: {message}"
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, spelled, n=1)
        meant = f" (did you mean {close[0]}?)" if close else ""
        return f"params.{key} is not a parameter of this check{meant}; it takes: {takes}"
    field = _field(model, key)
    described = f" ({field.description})" if field is not None and field.description else ""
    if first["type"] == "missing" and len(first["loc"]) == 1:
        return f"params.{key} is required by this check and missing{described}"
    if field is not None and _is_union(field.annotation) and len(first["loc"]) > 1:
        # Each alternative of the union failed: say what the key takes, not each failure.
        return (f"params.{key} does not have the form this check takes{described}; got "
                f"{_shown(first['input'])}")
    where = ".".join(str(part) for part in first["loc"])
    if first["type"] == "value_error":  # a validator's sentence, which says what it got
        return f"params.{message}" if message.startswith(f"{key}.") else (
            f"params.{where}: {message}")
    return f"params.{where}: {message} (got {_shown(first['input'])})"


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, UnionType)


def _field(model: type[CheckParams], key: str) -> Any:
    for name, field in model.model_fields.items():
        choices = getattr(field.validation_alias, "choices", None) or ()
        if key == name or key == field.alias or key in choices:
            return field
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -------------------------------------------------------------------------- a whole spec


def problems(spec: AssignmentSpec) -> list[str]:
    """Every test whose check is unknown or whose params do not fit its check's model, in
    the spec as written and in each handout version that changes a test's params: one
    sentence each, naming the test (index and name), the key and the check. The folder's
    own checks.py must load (its errors are raised, not listed)."""
    registry.load_folder_checks(spec.folder)
    index = {test.name: i for i, test in enumerate(spec.tests)}
    found = _unused_defaults(spec)
    for test in spec.tests:
        found += _test_problems(test, index[test.name], spec.folder)
    for variant in spec.variants:
        changed = {name for name, override in variant.tests.items()
                   if override.params is not None}
        for test in spec.with_variant(variant.name).tests:
            if test.name in changed:
                found += _test_problems(test, index[test.name], spec.folder, variant.name)
    return found


def _unused_defaults(spec: AssignmentSpec) -> list[str]:
    """A [defaults.params] key goes to the tests whose check takes it; one that no test's
    check takes is a mistake (a misspelt key)."""
    takes: set[str] = set()
    for test in spec.tests:
        keys = _taken(test.check, test.params, spec.folder)
        if keys is None:
            return []
        takes |= keys
    found = []
    for key in spec.default_params:
        if key not in takes:
            close = difflib.get_close_matches(key, sorted(takes), n=1)
            meant = f" (did you mean {close[0]}?)" if close else ""
            found.append(f"defaults.params.{key} is not a parameter of any test's check"
                         f"{meant}")
    return found


def _test_problems(test: TestSpec, index: int, folder: Path, variant: str | None = None
                   ) -> list[str]:
    version = f', handout version "{variant}"' if variant else ""
    where = f'tests.{index} ("{test.name}", check "{test.check}"{version})'
    try:
        return [f"{where}: {problem}" for problem in _problems(test.check, test.params, folder,
                                                                  test.defaulted_params)]
    except KeyError:
        if variant:
            return []  # said once, for the spec as written
        return [f"Test {test.name!r} uses check {test.check!r}, which is neither built in nor "
                "defined in checks.py."]


def check_params(spec: AssignmentSpec, source: str | None = None) -> AssignmentSpec:
    """``spec`` itself once every test's check resolves and its params fit (see
    :func:`problems`); SpecError listing every problem otherwise. ``source`` names the
    spec in the message (default: the folder's spec.toml)."""
    where = source or str(spec.folder / "spec.toml")
    try:
        found = problems(spec)
    except Exception as exc:  # noqa: BLE001 - course code's fault, said as a sentence
        raise SpecError(f"{spec.folder / 'checks.py'} fails to import: "
                        f"{type(exc).__name__}: {exc}") from None
    if found:
        raise SpecError(f"{where}:\n" + "\n".join(f"  {line}" for line in found))
    return spec
