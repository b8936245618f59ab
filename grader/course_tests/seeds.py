"""Seeds a course test sets are set in the sandbox too.

In-process, the test and the student's code share one generator: ``torch.manual_seed(0)``
then ``Student()`` gives the student's layer the seeded initial weights, and courses
compare it with a reference built after the same seed. Across the boundary there are two
generators, so each ``numpy.random.seed``, ``random.seed`` and ``torch.manual_seed`` the
test calls is repeated in the sandbox (a call with a plain int; nothing runs here on the
student's behalf). Draws that interleave test and student code differ from in-process
unless the test seeds again before them (docs/writing-assignments.md, "Seeds").
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import random
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from grader.course_tests import proxies

_mirrored: set[int] = set()


def mirrored(local: Callable[..., Any], module: str, name: str) -> Callable[..., Any]:
    """``local`` that also calls ``module.name`` with the same int seed in the sandbox."""

    @functools.wraps(local)
    def seed(value: Any = None, *args: Any, **kwargs: Any) -> Any:
        result = local(value, *args, **kwargs)
        if type(value) is int:
            try:
                handle = proxies.request({"op": "import", "module": module})
                proxies.request({"op": "call", "obj": handle, "name": name, "args": [value],
                                 "kwargs": {}})
            except (ImportError, proxies.StudentError, proxies.SandboxGone):
                pass  # the sandbox has no such library: nothing there to seed
        return result

    _mirrored.add(id(seed))
    return seed


def _patch(owner: Any, name: str, module: str) -> None:
    current = getattr(owner, name, None)
    if current is not None and id(current) not in _mirrored:
        setattr(owner, name, mirrored(current, module, name))


def _patch_torch(torch: types.ModuleType) -> None:
    _patch(torch, "manual_seed", "torch")
    if hasattr(torch, "random"):
        _patch(torch.random, "manual_seed", "torch")
    testing = importlib.import_module("torch.testing")
    compare = getattr(testing, "assert_close", None)
    if compare is not None and not getattr(compare, "_dlgrade_values", False):
        testing.assert_close = _on_values(compare)  # type: ignore[attr-defined]


def _on_values(compare: Callable[..., Any]) -> Callable[..., Any]:
    """``torch.testing.assert_close`` with the student's tensors' values (fetched, then
    compared here): it checks ``isinstance(x, torch.Tensor)``, which a proxy is not."""

    @functools.wraps(compare)
    def on_values(actual: Any, expected: Any, *args: Any, **kwargs: Any) -> Any:
        from grader.course_tests.tensors import evaluate

        return compare(evaluate(actual), evaluate(expected), *args, **kwargs)

    on_values._dlgrade_values = True  # type: ignore[attr-defined]
    return on_values


class _TorchHook(importlib.abc.MetaPathFinder):
    """Patches torch when the test imports it (NumPy-only courses never pay for torch)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "torch":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            original(module)
            _patch_torch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    _patch(np.random, "seed", "numpy.random")
    _patch(random, "seed", "random")
    if "torch" in sys.modules:
        _patch_torch(sys.modules["torch"])
    else:
        sys.meta_path.insert(0, _TorchHook())
