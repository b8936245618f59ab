"""mytorch-cnn graded end to end through the sandbox: the solution under both handout
versions, every known bug, the handout, and the course's own rubric details."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader import results
from grader.grade import grade_directory
from grader.known_bugs import KnownBug, build_handin, known_bugs
from grader.outcomes import Outcome
from grader.results import GradingResult
from grader.spec import AssignmentSpec
from sandbox.backend import Backend, LocalBackend
from sandbox.process_backend import ProcessBackend

ASSIGNMENT = Path(__file__).resolve().parents[2] / "assignments/mytorch-cnn"
BUGS = known_bugs(ASSIGNMENT)
SPRING_2020 = ["Multiple choice", "Conv1D forward", "Conv1D backward: dx", "Conv1D backward: dW",
               "Conv1D backward: db", "Simple scanning MLP", "Distributed scanning MLP",
               "CNN model"]

pytestmark = pytest.mark.sandbox


def handin_with(tmp_path: Path, bug: KnownBug | None = None) -> Path:
    """A copy of the solution with ``bug`` applied."""
    return build_handin(ASSIGNMENT / "solution", bug, tmp_path / "handin")


def by_name(result: GradingResult) -> dict[str, results.TestResult]:
    return {test.name: test for test in result.tests}


def test_solution_gets_full_marks_in_both_backends(
    tmp_path: Path, mytorch_spec: AssignmentSpec, any_backend: Backend
) -> None:
    result = grade_directory(mytorch_spec, handin_with(tmp_path), any_backend)
    failing = {t.name: t.output for t in result.tests if not t.passed}
    assert failing == {}
    assert result.score == result.max_score == 100
    assert result.sandbox == any_backend.name
    # the solution has Conv2D, so it is recognised as the spring-2021 handout
    assert result.variant == "spring-2021" and "Conv2D backward" in by_name(result)
    assert "recognised because mytorch/conv.py defines Conv2D" in result.output


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solution_passes_for_any_seed(
    tmp_path: Path, mytorch_spec: AssignmentSpec, process_backend: ProcessBackend, seed: int
) -> None:
    result = grade_directory(mytorch_spec, handin_with(tmp_path), process_backend, seed=seed)
    assert result.score == 100, [t.output for t in result.tests if not t.passed]


def test_a_course_pinned_to_spring_2020_grades_its_rubric(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    result = grade_directory(mytorch_spec.pinned("spring-2020"), handin_with(tmp_path),
                             LocalBackend())
    assert [t.name for t in result.tests] == SPRING_2020
    assert result.score == result.max_score == 100
    assert by_name(result)["Conv1D forward"].max_score == 20
    assert result.variant == "spring-2020" and "set to that handout" in result.output


def test_spring_2021_scores_each_question_as_its_runner_does(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    handin = handin_with(tmp_path, KnownBug.load(ASSIGNMENT / "bugs" / "mc_wrong_answer"))
    result = grade_directory(mytorch_spec, handin, LocalBackend())
    mc = by_name(result)["Multiple choice"]
    assert result.variant == "spring-2021"
    assert mc.score == 4 and "question_3() returned 'c'" in mc.output
    assert result.score == 99


def test_multiple_choice_letters_are_compared_exactly_as_the_runner_does(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    """The runner compares 'b' == mc.question_1(): an upper-case or padded letter earns
    nothing there, so it earns nothing here either (and the feedback says why)."""
    handin = handin_with(tmp_path)
    mc = handin / "hw2" / "mc.py"
    assert by_name(grade_directory(mytorch_spec, handin, LocalBackend()))["Multiple choice"].passed
    text = mc.read_text()
    mc.write_text(text.replace("'d'", "'D'").replace("mc_answer = 'a'", "mc_answer = 'a '", 1))
    result = by_name(grade_directory(mytorch_spec, handin, LocalBackend()))["Multiple choice"]
    assert result.score == 3  # spring 2021: one point per question
    assert "question_2() returned 'D' (the course's grader needs exactly 'd')" in result.output
    assert "question_4() returned 'a '" in result.output


def test_conv1d_and_the_cnn_are_held_to_the_runners_tolerances(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    """The runner passes Conv1D within 1e-12 and the CNN within 1e-8 (absolute): a layer
    computed in float32 (errors near 1e-6) fails both there, and here too."""
    handin = handin_with(tmp_path)
    conv = handin / "mytorch" / "conv.py"
    zeros = "        out = np.zeros((batch_size, self.out_channel, output_size))\n"
    assert conv.read_text().count(zeros) == 1
    conv.write_text(conv.read_text().replace(
        zeros, zeros.replace("output_size))", "output_size), dtype=np.float32)")))
    tests = by_name(grade_directory(mytorch_spec.pinned("spring-2020"), handin, LocalBackend()))
    assert not tests["Conv1D forward"].passed and not tests["CNN model"].passed
    assert "atol=1e-12" in tests["Conv1D forward"].output
    assert not tests["Conv1D backward: dW"].passed  # no backward points while forward fails
    right = by_name(grade_directory(mytorch_spec.pinned("spring-2020"), handin_with(
        tmp_path / "float64"), LocalBackend(), seed=5))
    assert all(test.passed for test in right.values())


CONV1D = SPRING_2020[1:5]


def conv1d_scores(spec: AssignmentSpec, handin: Path) -> list[float]:
    tests = by_name(grade_directory(spec, handin, LocalBackend()))
    return [tests[name].score for name in CONV1D]


def test_conv1d_is_scored_as_each_semesters_runner_scores_it(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    """Spring 2021's runner gives Conv1D's 40 points all or nothing; spring 2020's scores
    each part, but no backward part while forward is wrong (with its zero biases)."""
    spring_2020 = mytorch_spec.pinned("spring-2020")
    assert conv1d_scores(mytorch_spec, handin_with(tmp_path / "right")) == [15, 10, 10, 5]
    db_wrong = handin_with(tmp_path / "db", KnownBug.load(ASSIGNMENT / "bugs" / "db_averaged"))
    assert conv1d_scores(mytorch_spec, db_wrong) == [0, 0, 0, 0]
    assert conv1d_scores(spring_2020, db_wrong) == [20, 20, 10, 0]
    flipped = handin_with(tmp_path / "flip", KnownBug.load(ASSIGNMENT / "bugs" / "flipped_kernel"))
    assert conv1d_scores(spring_2020, flipped) == [0, 0, 0, 0]
    # forward without b: wrong by the handout (random biases), right by the runner's zeros,
    # so only the forward points are lost
    no_bias = handin_with(tmp_path / "no_bias")
    conv = no_bias / "mytorch" / "conv.py"
    conv.write_text(conv.read_text().replace("        out += self.b.reshape(1, -1, 1)\n", ""))
    assert conv1d_scores(spring_2020, no_bias) == [0, 20, 10, 10]
    cnn = by_name(grade_directory(spring_2020, no_bias, LocalBackend()))["CNN model"]
    assert cnn.passed  # the CNN is checked with the runner's zero biases: charged once


@pytest.mark.parametrize("bug", BUGS, ids=lambda b: b.name)
def test_each_known_bug_loses_exactly_its_tests_with_its_hint(
    tmp_path: Path, mytorch_spec: AssignmentSpec, process_backend: ProcessBackend, bug: KnownBug
) -> None:
    spec = mytorch_spec.pinned(bug.variant) if bug.variant else mytorch_spec
    result = grade_directory(spec, handin_with(tmp_path, bug), process_backend)
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
    assert result.variant == "spring-2020"
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


def test_files_missing_are_named_in_a_sentence(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    handin = handin_with(tmp_path)
    (handin / "mytorch" / "loss.py").unlink()
    (handin / "mytorch" / "linear.py").unlink()
    cnn = by_name(grade_directory(mytorch_spec, handin, LocalBackend(), only={"CNN model"}))
    assert cnn["CNN model"].output == ("mytorch/linear.py, mytorch/loss.py are missing from "
                                       "your handin.")


# Later semesters' layouts, as public handins have them (fall 2020: an autograd Tensor in
# mytorch/nn/; fall 2021: Conv1d on Conv1d_stride1 in mytorch/conv.py; then one file per
# layer), each with its HW2 files beside it.
OTHER_SEMESTERS = [
    ("fall-2020", {"mytorch/nn/conv.py": "class Conv1d:\n    pass\n",
                   "mytorch/tensor.py": "class Tensor:\n    pass\n"}),
    ("fall-2021", {"mytorch/conv.py": "class Conv1d_stride1:\n    pass\n\n"
                                      "class Conv1d:\n    pass\n"}),
    ("one-file-per-layer", {"mytorch/Conv1d.py": "class Conv1d:\n    pass\n"}),
    ("one-file-per-layer-nn", {"mytorch/nn/Conv1d.py": "class Conv1d:\n    pass\n"}),
]


@pytest.mark.parametrize(("name", "files"), OTHER_SEMESTERS, ids=[n for n, _ in OTHER_SEMESTERS])
def test_another_semesters_hw2p1_is_not_graded_and_the_student_is_told(
    tmp_path: Path, mytorch_spec: AssignmentSpec, name: str, files: dict[str, str]
) -> None:
    handin = tmp_path / "handin"
    for path, text in {**files, "hw2/mlp_scan.py": "import numpy as np\n"}.items():
        (handin / path).parent.mkdir(parents=True, exist_ok=True)
        (handin / path).write_text(text)
    result = grade_directory(mytorch_spec, handin, LocalBackend())
    assert result.rejected is not None and result.score == 0
    assert "HW2P1 handout" in result.rejected and "does not grade" in result.rejected
    assert f"other_handout={name}: not graded here" in result.staff_log
    # this semester's handin, whatever else it carries, is graded as before
    spring = handin_with(tmp_path / "spring")
    for path, text in files.items():
        if not (spring / path).exists():
            (spring / path).parent.mkdir(parents=True, exist_ok=True)
            (spring / path).write_text(text)
    assert grade_directory(mytorch_spec, spring, LocalBackend(),
                           only={"Multiple choice"}).rejected is None


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
    assert mc.score == 0 and "hw2/mc.py does not compile" in mc.output
    assert "SyntaxError" in result.output and "line 1" in result.output  # once, above the tests
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


def test_torch_in_a_layer_file_is_refused_with_the_handouts_rule(
    tmp_path: Path, mytorch_spec: AssignmentSpec
) -> None:
    result = grade_directory(mytorch_spec, handin_with(
        tmp_path, KnownBug.load(ASSIGNMENT / "bugs" / "imports_torch")), LocalBackend())
    conv = by_name(result)["Conv1D forward"]
    assert "mytorch/conv.py imports torch" in conv.output
    assert "Do not use any auto-differentiation toolboxes" in conv.output
    assert by_name(result)["Multiple choice"].passed


def test_a_layer_cannot_borrow_hw2_pys_torch_allowance(
    tmp_path: Path, mytorch_spec: AssignmentSpec, process_backend: ProcessBackend
) -> None:
    """hw2/hw2.py may import torch; mytorch/conv.py may not, not even by importing hw2 (which
    imports torch while conv.py's code is on the stack)."""
    handin = handin_with(tmp_path)
    hw2 = handin / "hw2" / "hw2.py"
    hw2.write_text(hw2.read_text().replace("from conv import *\n",
                                           "from conv import *\nimport torch\n"))
    conv = handin / "mytorch" / "conv.py"
    borrowed = "        self.x = __import__('hw2').torch.as_tensor(x).numpy()\n"
    conv.write_text(conv.read_text().replace("        self.x = x\n", borrowed, 1))
    result = grade_directory(mytorch_spec, handin, process_backend)
    forward = by_name(result)["Conv1D forward"]
    assert forward.score == 0 and "import of torch is not allowed" in forward.output
    assert by_name(result)["Multiple choice"].passed
