"""The check registry: names in ``spec.toml`` -> trusted check functions.

Built-in checks live in ``grader.checks``; an assignment folder may bring its own
``checks.py`` (trusted code written by course staff, e.g. ``assignments/mytorch-cnn/``),
loaded by path, with its own helper modules beside it (:func:`folder_module`). A folder's checks
belong to that folder: two folders (two versions of one uploaded assignment, or two
courses) may each define ``course.x`` without clobbering each other, and the runner looks
a test's check up in its own folder first. No folder may take over a built-in name.
The datasets a ``checks.py`` registers (``grader.api.register_dataset``) belong to its
folder in the same way (``grader.datasets.registering_for``).

A check may declare its params (``@check(name, params=Model)``, a ``grader.params``
model): every test's ``[tests.params]`` is validated against it when the spec is
checked (``grader.params.check_params``), and the check reads the validated instance as
``ctx.params``. A check registered without one gets the plain dict.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader import datasets

if TYPE_CHECKING:
    from grader.context import CheckContext
    from grader.params import CheckParams

CheckFunction = Callable[["CheckContext"], "float | None"]
BUILTIN_MODULES = (
    "grader.checks.torch_modules",
    "grader.checks.torch_functions",
    "grader.checks.constraints",
    "grader.checks.accuracy",
    "grader.course_tests.checks",
)

_REGISTRY: dict[str, CheckFunction] = {}
# checks.py path -> the checks it registered; a file is executed once per process.
_FOLDER_CHECKS: dict[Path, dict[str, CheckFunction]] = {}
_LATEST: dict[str, CheckFunction] = {}  # a folder check looked up without its folder
_LOADING = threading.RLock()
_capture: dict[str, CheckFunction] | None = None  # set while a checks.py runs


@dataclass(frozen=True)
class Declared:
    """What a check says about its params: their model and, for a check that runs another
    one, the key that names it (``wraps``): the keys that are not the model's go to that
    check, and are validated against its model."""

    model: type[CheckParams]
    wraps: str | None = None


_DECLARED: dict[CheckFunction, Declared] = {}


def check(name: str, params: type[CheckParams] | None = None, *, wraps: str | None = None
          ) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under ``name``. It returns the fraction earned (None = all).

    ``params``: the model of its ``[tests.params]`` (a ``grader.params.CheckParams``);
    without one the check gets the params as a plain dict, unvalidated. ``wraps``: the
    field of that model naming another check which gets every other key (see Declared).
    """
    if wraps is not None and (params is None or wraps not in params.model_fields):
        raise ValueError(f"check {name!r}: wraps={wraps!r} must be a field of its params")

    def register(function: CheckFunction) -> CheckFunction:
        target = _REGISTRY if _capture is None else _capture
        taken = _REGISTRY.get(name) or target.get(name)
        if taken is not None and taken is not function:
            raise ValueError(f"check {name!r} is registered twice")
        if params is not None:
            _DECLARED[function] = Declared(params, wraps)
        target[name] = function
        return function

    return register


def declared(name: str, folder: Path | None = None) -> Declared | None:
    """The params model the check ``name`` declared (None: it takes a plain dict).
    KeyError for a check that is neither ``folder``'s own nor built in (with a folder,
    another folder's checks do not count)."""
    if folder is None:
        return _DECLARED.get(lookup(name))
    load_builtin_checks()
    found = _FOLDER_CHECKS.get((folder / "checks.py").resolve(), {}).get(name) or _REGISTRY.get(
        name)
    if found is None:
        raise KeyError(f"no check called {name!r} in {folder} or among the built-ins")
    return _DECLARED.get(found)


def load_builtin_checks() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def load_folder_checks(folder: Path) -> dict[str, CheckFunction]:
    """Import ``folder/checks.py`` if present (it registers with @check); its checks.

    Raises whatever the file raises (ImportError, SyntaxError, ValueError for a name
    that is registered twice or is a built-in's)."""
    path = (folder / "checks.py").resolve()
    if not path.is_file():
        return {}
    with _LOADING:
        if path not in _FOLDER_CHECKS:
            _FOLDER_CHECKS[path] = _execute(path, folder)
        _LATEST.update(_FOLDER_CHECKS[path])
        return dict(_FOLDER_CHECKS[path])


def _execute(path: Path, folder: Path) -> dict[str, CheckFunction]:
    global _capture
    load_builtin_checks()  # first, so that they are not captured as the folder's
    package = _folder_package(path.parent, fresh=True)
    spec = importlib.util.spec_from_file_location(f"{package}.checks", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    captured: dict[str, CheckFunction] = {}
    _capture = captured
    try:
        with datasets.registering_for(folder):
            spec.loader.exec_module(module)
    finally:
        _capture = None
    return captured


def _folder_package(folder: Path, *, fresh: bool = False) -> str:
    """A package named after the folder's path (unique per folder and version), whose
    ``__path__`` is the folder: ``checks.py`` is its module ``checks``, so relative imports
    (``from .helpers import x``) load the folder's own files, never another folder's.
    ``fresh``: a new package, without the modules imported into the last one (checks.py
    runs again, and its helpers with it, registering their checks into the new capture)."""
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    name = f"dlgrade_course_{digest}"
    if fresh:
        for loaded in [n for n in sys.modules if n == name or n.startswith(f"{name}.")]:
            del sys.modules[loaded]
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        package.__package__ = name
        sys.modules[name] = package
    return name


def folder_module(folder: Path, name: str) -> types.ModuleType:
    """The module ``name`` of an assignment folder (``folder/name.py``, trusted staff code),
    imported as its ``checks.py`` imports it (``from .name import x``): once per process,
    after the folder's checks.py, so that any check it registers stays the folder's."""
    load_folder_checks(folder)
    return importlib.import_module(f"{_folder_package(folder.resolve())}.{name}")


def lookup(name: str, folder: Path | None = None) -> CheckFunction:
    """The check called ``name``: ``folder``'s own checks first, then the built-ins."""
    load_builtin_checks()
    if folder is not None:
        own = _FOLDER_CHECKS.get((folder / "checks.py").resolve(), {})
        if name in own:
            return own[name]
    found = _REGISTRY.get(name) or _LATEST.get(name)
    if found is None:
        raise KeyError(f"no check called {name!r}; known: {', '.join(known_checks())}")
    return found


def known_checks() -> list[str]:
    """The built-in check names (and any registered directly)."""
    load_builtin_checks()
    return sorted(_REGISTRY)
