"""The import contract of course folders (issue 16): a course's Python files
(``assignments/<slug>/**/*.py``: its checks.py, their helper modules, and the solution,
handout and test files, which import none of dlgrade anyway) import from dlgrade only the
plug-in interface ``grader.api`` and the shared reference library ``reference``
(grader/api.py says why). Relative imports within the folder, the standard library and
numerical libraries are theirs to use. The folders have hyphens in their names, so they
are no importable packages for import-linter: this walks their syntax trees instead,
imports made with ``importlib.import_module("...")`` or ``__import__("...")`` included."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.scaffold import scaffold

ROOT = Path(__file__).resolve().parents[2]
OURS = ("grader", "sandbox", "reference", "store", "tasks", "web", "dlgrade", "migrations")
COURSES = sorted(path.parent for path in (ROOT / "assignments").glob("*/spec.toml"))
RULE = "a course imports only grader.api and reference from dlgrade (grader/api.py)"


def allowed(name: str) -> bool:
    return name == "grader.api" or name.split(".")[0] == "reference"


def imported_names(node: ast.AST) -> Iterator[str]:
    """The absolute module names an import statement or a constant dynamic import names
    (``from grader import api`` names grader.api)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
        if node.module in OURS:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        else:
            yield node.module
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        function = node.func
        called = (function.id if isinstance(function, ast.Name)
                  else function.attr if isinstance(function, ast.Attribute) else "")
        if called in ("__import__", "import_module") and isinstance(node.args[0].value, str):
            yield node.args[0].value


def violations(folder: Path) -> list[str]:
    """``slug/file.py:line: imports name`` for each import of dlgrade outside the contract."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for name in imported_names(node):
                if name.split(".")[0] in OURS and not allowed(name):
                    where = path.relative_to(folder.parent).as_posix()
                    found.append((where, getattr(node, "lineno", 0), name))
    return [f"{where}:{line}: imports {name}" for where, line, name in sorted(found)]


@pytest.mark.parametrize("folder", COURSES, ids=lambda p: p.name)
def test_a_course_imports_only_the_interface(folder: Path) -> None:
    found = violations(folder)
    assert found == [], f"{RULE}:\n" + "\n".join(found)


def test_every_built_in_course_is_covered() -> None:
    assert {p.name for p in COURSES} >= {"mytorch-cnn", "rnn-gru-cells", "cnn-rnn-transformer",
                                         "mlp-cifar10", "mnist-mlp-cnn-vit"}
    assert (ROOT / "assignments/mytorch-cnn/checks.py").is_file()


def test_an_import_of_dlgrade_s_internals_is_named_with_its_file_and_line(
        tmp_path: Path) -> None:
    folder = tmp_path / "hw-1"
    (folder / "lib").mkdir(parents=True)
    (folder / "checks.py").write_text(
        "import numpy as np\n"
        "from grader.api import check\n"
        "from grader.registry import lookup\n"
        "from grader import api, datasets\n"
        "from .helpers import x\n"
        "import sandbox.session\n", encoding="utf-8")
    (folder / "lib/helpers.py").write_text(
        "import importlib\n"
        "from reference.numpy_layers import Linear\n"
        "store = importlib.import_module('store.queries')\n", encoding="utf-8")
    assert violations(folder) == [
        "hw-1/checks.py:3: imports grader.registry",
        "hw-1/checks.py:4: imports grader.datasets",
        "hw-1/checks.py:6: imports sandbox.session",
        "hw-1/lib/helpers.py:3: imports store.queries",
    ]
    (folder / "checks.py").write_text("from grader.api import check\n", encoding="utf-8")
    (folder / "lib/helpers.py").unlink()
    assert violations(folder) == []


def test_the_scaffold_s_template_imports_only_the_api(tmp_path: Path) -> None:
    (tmp_path / "handout").mkdir()
    (tmp_path / "handout/layer.py").write_text("class Layer:\n    pass\n", encoding="utf-8")
    folder = scaffold("hw", tmp_path / "handout", tmp_path / "hw")
    assert violations(folder) == []
    assert "from grader.api import" in (folder / "checks.py").read_text(encoding="utf-8")
