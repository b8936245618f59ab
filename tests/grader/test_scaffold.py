"""dlgrade assignments new: the scaffold of a handout, and that its output loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.known_bugs import known_bugs
from grader.registry import load_folder_checks
from grader.scaffold import ScaffoldError, scaffold
from grader.spec import load_spec


def _handout(root: Path) -> Path:
    files = {
        "mytorch/activation.py": "class Tanh:\n    pass\n",
        "mytorch/gru_cell.py": "from activation import Tanh\n\nclass GRUCell:\n    pass\n",
        "hw3/mc.py": "question_1 = None\n",
        "autograder/runner.py": "import sys\nsys.path.append('hw3')\nimport mc\n",
        "autograder/data/ref.npz": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_the_scaffold_loads_and_says_what_to_fill_in(tmp_path: Path) -> None:
    folder = scaffold("hw3p1", _handout(tmp_path / "handout"), tmp_path / "hw3p1")
    spec = load_spec(folder)
    assert spec.submission.python_path == ("", "hw3", "mytorch")
    assert {t.check for t in spec.tests} >= {"hw3p1.gru_cell", "hw3p1.tanh", "hw3p1.answers",
                                             "course.script"}
    assert (folder / "course_tests/autograder/runner.py").is_file()
    assert (folder / "course_tests/autograder/data/ref.npz").is_file()
    assert not (folder / "handout/autograder/data/ref.npz").exists()  # fixtures stay trusted
    assert (folder / "solution/mytorch/gru_cell.py").is_file()
    assert set(load_folder_checks(folder)) == {t.check for t in spec.tests
                                               if not t.check.startswith("course.")}
    assert "import" in (folder / "checks.py").read_text() and "grader.api" in (
        folder / "checks.py").read_text()
    (bug,) = known_bugs(folder)
    assert bug.fails and "TODO" in bug.hint


def test_the_scaffold_refuses_a_bad_slug_or_a_full_folder(tmp_path: Path) -> None:
    handout = _handout(tmp_path / "handout")
    with pytest.raises(ScaffoldError, match="cannot be a slug"):
        scaffold("HW 3", handout, tmp_path / "x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full/file").write_text("x")
    with pytest.raises(ScaffoldError, match="not empty"):
        scaffold("hw3", handout, tmp_path / "full")
