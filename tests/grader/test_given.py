"""Given code (grader.given): the handout's given code compared with a handin's, by syntax."""

from __future__ import annotations

from pathlib import Path

from grader import given
from grader.spec import AssignmentSpec, GivenSpec

ASSIGNMENT = Path(__file__).resolve().parents[2] / "assignments/mytorch-cnn"

STEP = '''
class CNN:
    def forward(self, x):
        return x

    def step(self):
        """Do not modify this method"""
        self.linear_layer.W = self.linear_layer.W - self.lr * self.linear_layers.dW
'''


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hw2.py").write_text(text)
    return folder


def test_comments_docstrings_and_other_methods_are_not_changes(tmp_path: Path) -> None:
    handout = write(tmp_path / "handout", STEP)
    reworded = STEP.replace('"""Do not modify this method"""', "# given, do not modify")
    handin = write(tmp_path / "handin", reworded.replace("return x", "return 2 * x"))
    assert given.changed(handout, handin, [GivenSpec(file="hw2.py", symbols=("CNN.step",))]) == []


def test_an_edited_or_missing_given_method_is_reported(tmp_path: Path) -> None:
    handout = write(tmp_path / "handout", STEP)
    fixed = write(tmp_path / "fixed", STEP.replace("linear_layers", "linear_layer"))
    gone = write(tmp_path / "gone", "class CNN:\n    pass\n")
    spec = [GivenSpec(file="hw2.py", symbols=("CNN.step",)), GivenSpec(file="mlp.py")]
    assert given.changed(handout, fixed, spec) == ["hw2.py:CNN.step"]
    assert given.changed(handout, gone, spec) == ["hw2.py:CNN.step"]
    assert given.missing_in(handout, spec) == ["mlp.py"]


def test_mytorch_cnn_solution_keeps_the_handouts_given_code(mytorch_spec: AssignmentSpec) -> None:
    """Our solution leaves the handout's given code alone, typo in CNN.step included."""
    assert mytorch_spec.given
    assert given.missing_in(ASSIGNMENT / "handout", mytorch_spec.given) == []
    assert given.changed(ASSIGNMENT / "handout", ASSIGNMENT / "solution", mytorch_spec.given) == []
    assert "self.linear_layers.dW" in (ASSIGNMENT / "solution/hw2/hw2.py").read_text()
