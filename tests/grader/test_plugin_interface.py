"""Course checks written against the plug-in interface import only grader.api from
dlgrade (plus their own folder, the standard library and numerical libraries), so the
later move of course content out of reference/ cannot break them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grader.scaffold import scaffold

ROOT = Path(__file__).resolve().parents[2]
OURS = ("grader", "sandbox", "reference", "store", "tasks", "web", "dlgrade")
ON_THE_INTERFACE = [ROOT / "assignments/rnn-gru-cells"]


def dlgrade_imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module
                     and not node.level else [])
            found |= {name for name in names if name.split(".")[0] in OURS}
    return found


@pytest.mark.parametrize("folder", ON_THE_INTERFACE, ids=lambda p: p.name)
def test_course_checks_import_only_the_api(folder: Path) -> None:
    assert dlgrade_imports(folder) == {"grader.api"}


def test_the_scaffold_s_template_imports_only_the_api(tmp_path: Path) -> None:
    (tmp_path / "handout").mkdir()
    (tmp_path / "handout/layer.py").write_text("class Layer:\n    pass\n", encoding="utf-8")
    folder = scaffold("hw", tmp_path / "handout", tmp_path / "hw")
    assert dlgrade_imports(folder) == {"grader.api"}
