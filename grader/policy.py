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


# Sizes past which staff are told about a literal or file (docs/security.md G2: weights
# trained elsewhere smuggled in as a base64 literal or a data file). A flag, not a verdict:
# the untrained-model control is what fails such a model.
LITERAL_CHARS = 10_000  # one string or bytes literal
FILE_LITERAL_CHARS = 20_000  # all of a file's string and bytes literals together
LITERAL_ITEMS = 1_000  # one list, tuple or set display
DATA_BYTES = 10_000  # a file that is not Python source


def large_literals(root: Path, files: list[str]) -> list[str]:
    """Literals and data files in the handin big enough to hold a model's weights, one
    phrase each ("cnn.py line 121: a string literal of 21,156 characters")."""
    found: list[str] = []
    for relative in files:
        path = root / relative
        if not relative.endswith(".py"):
            size = path.stat().st_size
            if size > DATA_BYTES:
                found.append(f"{relative}: a data file of {size:,} bytes")
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=relative)
        except (SyntaxError, ValueError):
            continue
        found.extend(_literals_in(tree, relative))
    return found


def _literals_in(tree: ast.AST, path: str) -> list[str]:
    found, total = [], 0
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            total += len(node.value)
            if len(node.value) > LITERAL_CHARS:
                kind = "string" if isinstance(node.value, str) else "bytes"
                found.append(f"{path} line {line}: a {kind} literal of {len(node.value):,} "
                             "characters")
        elif isinstance(node, ast.List | ast.Tuple | ast.Set) and len(node.elts) > LITERAL_ITEMS:
            found.append(f"{path} line {line}: a literal of {len(node.elts):,} items")
    if total > FILE_LITERAL_CHARS and not found:
        found.append(f"{path}: {total:,} characters of string literals in all")
    return found


def matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether a handin path matches any of a test's file patterns."""
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)
