"""scripts/mypy_courses.py: mypy over a course folder's own modules (checks.py and its
helpers, imported relatively), with grader.api's real types, reported by the folder's own
file and line; the built-in folders are clean."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

HELPERS = """from __future__ import annotations


def width(x: int) -> int:
    return x
"""

CHECKS = """from __future__ import annotations

from grader.api import CheckContext, check

from .helpers import width


@check("hw.width")
def width_check(ctx: CheckContext) -> float | None:
    return width(ARGUMENT)
"""


def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mypy_courses", ROOT / "scripts/mypy_courses.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return sys.modules[spec.name]


def test_a_folder_is_a_package_named_for_its_slug() -> None:
    mypy_courses = script()
    assert mypy_courses.package_name(Path("assignments/mytorch-cnn")) == "course_mytorch_cnn"
    assert mypy_courses.course_modules(ROOT / "assignments/mytorch-cnn") == [
        "bug_variants", "checks", "conv2d", "handin", "models", "networks"]


@pytest.mark.slow
def test_a_type_error_in_a_course_check_names_its_file_and_line(tmp_path: Path) -> None:
    mypy_courses = script()
    folder = tmp_path / "hw-1"
    folder.mkdir()
    (folder / "helpers.py").write_text(HELPERS, encoding="utf-8")
    (folder / "checks.py").write_text(CHECKS.replace("ARGUMENT", "ctx.rng"), encoding="utf-8")
    status, report = mypy_courses.check_folder(folder)
    assert status == 1
    assert ('hw-1/checks.py:10: error: Argument 1 to "width" has incompatible type '
            '"Generator"; expected "int"') in report, report
    (folder / "checks.py").write_text(CHECKS.replace("ARGUMENT", "3"), encoding="utf-8")
    assert mypy_courses.check_folder(folder) == (0, "")
