"""The import hook of the trusted runner: ``import rnn_cell`` in a course test becomes a
proxy of the student's module in the sandbox.

A name is the student's when it is a top-level module or package of the handin under
one of the spec's ``[submission] python_path`` folders (the grader lists them) and the
trusted side has no module of that name itself: the standard library, installed
packages, the grader's own packages and the course's test folder always win, so a
handin cannot shadow ``numpy`` or a course helper on the trusted side. The sandbox
imports the module (with the same python_path); the runner only ever holds a handle.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

from grader.course_tests import proxies
from sandbox.protocol import Handle


class StudentFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, names: set[str], forced: set[str]) -> None:
        self.names = set(names) | set(forced)
        self.forced = set(forced)
        self._trusted: dict[str, bool] = {}

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top not in self.names or (top not in self.forced and self._trusted_has(top)):
            return None
        handle = proxies.request({"op": "import", "module": fullname})
        if not isinstance(handle, Handle):
            raise ImportError(f"the sandbox answered the import of {fullname} with data")
        package = proxies.request({"op": "call", "obj": handle, "name": "__dir__",
                                   "args": [], "kwargs": {}})
        is_package = isinstance(package, list) and "__path__" in package
        spec = importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)
        spec.loader_state = handle
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return proxies.RemoteModule(spec.name, spec.loader_state,
                                    package=spec.submodule_search_locations is not None)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing runs here: the module was executed in the sandbox."""

    def _trusted_has(self, top: str) -> bool:
        if top not in self._trusted:
            found: Any = top in sys.stdlib_module_names or top in sys.builtin_module_names
            if not found:
                found = importlib.machinery.PathFinder.find_spec(top) is not None
            self._trusted[top] = bool(found)
        return self._trusted[top]


def install(names: set[str], forced: set[str]) -> StudentFinder:
    finder = StudentFinder(names, forced)
    sys.meta_path.insert(0, finder)
    return finder
