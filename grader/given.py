"""Given code (``[[given]]`` in spec.toml): what the course hands out and tells students not
to modify. Checks never grade it and call it only where the course's own grader does; this
module compares a handin's given code with the handout's, read with ``ast`` (never run), so
staff can see when a student changed it and authors can prove their solution did not.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grader.spec import GivenSpec


def _tree(path: Path) -> ast.Module | None:
    """The file's syntax tree without docstrings (students may reword those)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=path.name)
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
                body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            body.pop(0)
    return tree


def _find(tree: ast.Module, qualified: str) -> ast.AST | None:
    """The class or function ``A.b`` (dotted through classes) at the top of ``tree``."""
    scope: Sequence[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in qualified.split("."):
        node = next((n for n in scope if isinstance(
            n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and n.name == part), None)
        if node is None:
            return None
        scope = node.body
    return node


def fingerprint(folder: Path, given: GivenSpec) -> dict[str, str | None]:
    """``file`` or ``file:symbol`` -> a dump of its syntax tree (None: missing)."""
    tree = _tree(folder / given.file)
    if not given.symbols:
        return {given.file: None if tree is None else ast.dump(tree)}
    found = {}
    for symbol in given.symbols:
        node = None if tree is None else _find(tree, symbol)
        found[f"{given.file}:{symbol}"] = None if node is None else ast.dump(node)
    return found


def changed(handout: Path, handin: Path, givens: Sequence[GivenSpec]) -> list[str]:
    """The given files and symbols whose code in ``handin`` differs from ``handout``'s
    (comments and formatting aside), ``file`` or ``file:symbol``, in spec order."""
    differences = []
    for given in givens:
        theirs = fingerprint(handin, given)
        for key, original in fingerprint(handout, given).items():
            if original is not None and theirs.get(key) != original:
                differences.append(key)
    return differences


def missing_in(folder: Path, givens: Sequence[GivenSpec]) -> list[str]:
    """Given files and symbols the folder (an assignment's handout) does not have."""
    return [key for given in givens for key, tree in fingerprint(folder, given).items()
            if tree is None]
