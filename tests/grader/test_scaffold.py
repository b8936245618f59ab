"""dlgrade assignments new: the scaffold of a handout, and that its output loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader import params
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
    assert params.problems(spec) == []  # typed params, [defaults.params] tolerances included
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


def test_a_course_runner_named_like_hw1p1_autograder_stays_a_course_file(
    tmp_path: Path,
) -> None:
    """11-785 HW1P1 (S24): the local autograder and its flags file sit beside mytorch/."""
    handout = tmp_path / "handout"
    files = {
        "mytorch/__init__.py": "",
        "mytorch/nn/__init__.py": "",
        "mytorch/nn/linear.py": "class Linear:\n    pass\n",
        "mytorch/optim/sgd.py": "class SGD:\n    pass\n",
        "hw1p1_autograder.py": "from mytorch.nn.linear import Linear\n\ndef close(a, b):\n"
                               "    return True\n\ndef grade_mlp():\n    pass\n",
        "hw1p1_autograder_flags.py": "DEBUG_AND_GRADE_LINEAR = True\n",
    }
    for name, text in files.items():
        (handout / name).parent.mkdir(parents=True, exist_ok=True)
        (handout / name).write_text(text, encoding="utf-8")
    folder = scaffold("hw1p1", handout, tmp_path / "hw1p1")
    spec = load_spec(folder)
    assert spec.submission.required_files == ("mytorch/nn/linear.py", "mytorch/optim/sgd.py")
    assert spec.submission.top_level == ("mytorch",)  # a handin of just mytorch/ keeps it
    (course,) = [t for t in spec.tests if t.check.startswith("course.")]
    assert (course.check, course.params["file"]) == ("course.script", "hw1p1_autograder.py")
    assert {t.check for t in spec.tests} == {"hw1p1.linear", "hw1p1.sgd", "course.script"}
    for name in ("hw1p1_autograder.py", "hw1p1_autograder_flags.py"):
        assert (folder / "course_tests" / name).is_file()
        assert not (folder / "solution" / name).exists()
        assert not (folder / "handout" / name).exists()


def test_top_level_is_written_only_when_one_folder_holds_every_required_file(
    tmp_path: Path,
) -> None:
    folder = scaffold("hw3p1", _handout(tmp_path / "handout"), tmp_path / "hw3p1")
    assert load_spec(folder).submission.top_level == ()  # mytorch/ and hw3/: no wrapper
    assert "top_level" not in (folder / "spec.toml").read_text()
