"""The check registry: names in ``spec.toml`` -> trusted check functions.

Built-in checks live in ``grader.checks``; an assignment folder may bring its own
``checks.py`` (trusted code written by course staff), loaded by path.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grader.context import CheckContext

CheckFunction = Callable[["CheckContext"], "float | None"]
BUILTIN_MODULES = (
    "grader.checks.mytorch_cnn",
    "grader.checks.torch_modules",
    "grader.checks.torch_functions",
    "grader.checks.constraints",
    "grader.checks.accuracy",
)

_REGISTRY: dict[str, CheckFunction] = {}
_LOADED_FILES: set[Path] = set()  # a second exec would register every check twice


def check(name: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check under ``name``. It returns the fraction earned (None = all)."""

    def register(function: CheckFunction) -> CheckFunction:
        if name in _REGISTRY and _REGISTRY[name] is not function:
            raise ValueError(f"check {name!r} is registered twice")
        _REGISTRY[name] = function
        return function

    return register


def load_builtin_checks() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def load_folder_checks(folder: Path) -> None:
    """Import ``folder/checks.py`` if present (it registers with @check)."""
    path = (folder / "checks.py").resolve()
    if not path.is_file() or path in _LOADED_FILES:
        return
    spec = importlib.util.spec_from_file_location(f"dlgrade_checks_{folder.name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _LOADED_FILES.add(path)


def lookup(name: str) -> CheckFunction:
    load_builtin_checks()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no check called {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def known_checks() -> list[str]:
    load_builtin_checks()
    return sorted(_REGISTRY)
