"""mytorch-cnn graded end to end through the sandbox: the solution, every known bug, the handout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.grade import grade_directory
from grader.known_bugs import KnownBug, build_handin, known_bugs
from grader.outcomes import Outcome
from grader.results import GradingResult
from grader.spec import AssignmentSpec
from sandbox.backend import Backend, LocalBackend
from sandbox.process_backend import ProcessBackend

ASSIGNMENT = Path(__file__).resolve().parents[2] / "reference/assignments/mytorch-cnn"
BUGS = known_bugs(ASSIGNMENT)

pytestmark = pytest.mark.sandbox


def handin_with(tmp_path: Path, bug: KnownBug | None = None) -> Path:
    """A copy of the solution with ``bug`` applied."""
    return build_handin(ASSIGNMENT / "solution", bug, tmp_path / "handin")


def by_name(result: GradingResult) -> dict[str, object]:
    return {test.name: test for test in result.tests}


def test_solution_gets_full_marks_in_both_backends(
    tmp_path: Path, mytorch_spec: AssignmentSpec, any_backend: Backend
) -> None:
    result = grade_directory(mytorch_spec, handin_with(tmp_path), any_backend)
    failing = {t.name: t.output for t in result.tests if not t.passed}
    assert failing == {}
    assert result.score == result.max_score == 100
    assert result.sandbox == any_backend.name


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solution_passes_for_any_seed(
    tmp_path: Path, mytorch_spec: AssignmentSpec, process_backend: ProcessBackend, seed: int
) -> None:
    result = grade_directory(mytorch_spec, handin_with(tmp_path), process_backend, seed=seed)
    assert result.score == 100, [t.output for t in result.tests if not t.passed]


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.name)
def test_each_known_bug_loses_exactly_its_tests_with_its_hint(
    tmp_path: Path, mytorch_spec: AssignmentSpec, process_backend: ProcessBackend, bug: KnownBug
) -> None:
    result = grade_directory(mytorch_spec, handin_with(tmp_path, bug), process_backend)
    lost = {t.name for t in result.tests if t.score < t.max_score}
    assert lost == set(bug.fails)
    for test in result.tests:
        if test.name in bug.fails:
            assert test.score == 0 and test.outcome is not Outcome.PASSED
        else:
            assert test.score == test.max_score, test.output
    first = next(t for t in result.tests if t.name == bug.fails[0])
    assert bug.hint in first.output


def test_handout_scores_zero_without_crashing(
    tmp_path: Path, mytorch_spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    handout = tmp_path / "handout"
    shutil.copytree(ASSIGNMENT / "handout", handout)
    result = grade_directory(mytorch_spec, handout, process_backend)
    assert result.score == 0
    assert all(t.outcome is Outcome.FAILED for t in result.tests)
    conv = next(t for t in result.tests if t.name == "Conv1D forward")
    assert "NotImplementedError" in conv.output


def test_missing_file_fails_only_the_tests_that_need_it(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    handin = handin_with(tmp_path)
    (handin / "hw2" / "mc.py").unlink()
    result = grade_directory(mytorch_spec, handin, LocalBackend())
    mc = next(t for t in result.tests if t.name == "Multiple choice")
    assert mc.score == 0 and "hw2/mc.py is missing from your handin" in mc.output
    assert result.score == 95


def test_student_output_is_attached_to_the_test_that_printed_it(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    handin = handin_with(tmp_path)
    mc = handin / "hw2" / "mc.py"
    mc.write_text(mc.read_text() + "\nprint('thinking about question 1')\n")
    result = grade_directory(mytorch_spec, handin, LocalBackend())
    first = result.tests[0]
    assert first.passed and "thinking about question 1" in first.output
    assert all("thinking" not in t.output for t in result.tests[1:])


def test_syntax_error_is_reported_with_its_line(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    handin = handin_with(tmp_path)
    (handin / "hw2" / "mc.py").write_text("def question_1(:\n    return 'b'\n")
    result = grade_directory(mytorch_spec, handin, LocalBackend())
    mc = result.tests[0]
    assert mc.score == 0 and "SyntaxError" in mc.output and "line 1" in mc.output
    assert result.score == 95


def test_a_fresh_seed_per_attempt_changes_the_inputs(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    handin = handin_with(tmp_path, KnownBug.load(ASSIGNMENT / "bugs" / "dw_averaged"))
    outputs = {
        next(t.output for t in grade_directory(mytorch_spec, handin, LocalBackend()).tests
             if t.name == "Conv1D backward: dW")
        for _ in range(2)
    }
    assert len(outputs) == 2
