"""Static checks on the submitted source, outside the sandbox, with ``ast``.

The source is only parsed, never imported or executed on the trusted side.
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    module: str

    def sentence(self, reason: str) -> str:
        return f"{self.path} imports {self.module} (line {self.line}): {reason}."


def forbidden_imports(root: Path, files: list[str], forbidden: tuple[str, ...]) -> list[Violation]:
    """Every import of a forbidden top-level package in the Python files under root."""
    if not forbidden:
        return []
    found: list[Violation] = []
    for relative in files:
        if not relative.endswith(".py"):
            continue
        try:
            tree = ast.parse((root / relative).read_bytes(), filename=relative)
        except (SyntaxError, ValueError):
            continue  # the import in the sandbox reports the syntax error with its line
        found.extend(_imports_in(tree, relative, forbidden))
    return found


def _imports_in(tree: ast.AST, path: str, forbidden: tuple[str, ...]) -> list[Violation]:
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                names = [argument.value]
        for name in names:
            if name.partition(".")[0] in forbidden:
                found.append(Violation(path, getattr(node, "lineno", 0), name))
    return found


def _is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    name = ""
    if isinstance(func, ast.Name):
        name = func.id
    elif isinstance(func, ast.Attribute):
        name = func.attr
    return name in ("__import__", "import_module") and bool(node.args)


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether a handin path matches any of a test's file patterns."""
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)
