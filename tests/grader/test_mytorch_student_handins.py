"""Our own HW2P1 handins written the way real students write them (tests/grader/
mytorch_handins/): each gets the marks the course's runner gives it, under its own handout
version, in the process sandbox (the assignment's NumPy 1.26 runtime)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from grader.grade import grade_directory
from grader.known_bugs import apply_edits, copy_solution, lay_over, read_edits
from grader.spec import AssignmentSpec
from sandbox.process_backend import ProcessBackend

ASSIGNMENT = Path(__file__).resolve().parents[2] / "assignments/mytorch-cnn"
HANDINS = Path(__file__).resolve().parent / "mytorch_handins"
NAMES = sorted(p.name for p in HANDINS.iterdir() if (p / "handin.toml").is_file())

pytestmark = pytest.mark.sandbox


def student_handin(name: str, tmp_path: Path) -> tuple[Path, dict[str, object]]:
    """The solution with the handin's files laid over it and its edits made."""
    folder = HANDINS / name
    expect = tomllib.loads((folder / "handin.toml").read_text(encoding="utf-8"))
    handin = copy_solution(ASSIGNMENT / "solution", tmp_path / "handin")
    lay_over(handin, folder)
    (handin / "handin.toml").unlink()
    apply_edits(handin, read_edits(expect, f"{name}/handin.toml"))
    return handin, expect


@pytest.mark.parametrize("name", NAMES)
def test_student_handin_gets_the_courses_marks(
    name: str, tmp_path: Path, mytorch_spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    handin, expect = student_handin(name, tmp_path)
    result = grade_directory(mytorch_spec, handin, process_backend)
    lost = {t.name: t.output for t in result.tests if t.score < t.max_score}
    assert result.variant == expect["variant"]
    assert lost == {}
    assert result.score == expect["score"] == result.max_score
    changed = [line for line in result.staff_log if line.startswith("Given code changed")]
    wanted = expect.get("given_changed", [])
    assert changed == ([f"Given code changed from the handout (never graded): "
                        f"{', '.join(wanted)}"] if wanted else [])


def test_every_handin_folder_says_what_it_is() -> None:
    for name in NAMES:
        expect = tomllib.loads((HANDINS / name / "handin.toml").read_text(encoding="utf-8"))
        assert len(str(expect["description"])) > 40, name
    assert len(NAMES) >= 5


def test_numpy1_idioms_need_the_pinned_runtime(
    tmp_path: Path, mytorch_spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    """Without [runtime] (the worker's NumPy 2) the same handin crashes where NumPy 2 refuses
    its idioms: the pin is what grades it as the course did."""
    handin, _ = student_handin("spring2020_numpy1_idioms", tmp_path)
    unpinned = mytorch_spec.model_copy(update={"runtime": None})
    result = grade_directory(unpinned, handin, process_backend)
    conv = next(t for t in result.tests if t.name == "Conv1D forward")
    assert conv.score == 0 and "setting an array element with a sequence" in conv.output
