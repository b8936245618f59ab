"""GradingResult.to_gradescope() against a JSON Schema of Gradescope's results.json
(gradescope_results.schema.json, written from Gradescope's autograder specification),
for real gradings; and the schema itself rejects what Gradescope would not take."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from grader.grade import grade_directory, grade_path, rejected
from grader.known_bugs import KnownBug, build_handin
from grader.results import GradingResult
from grader.spec import AssignmentSpec, load_spec, resolve_assignment
from sandbox.backend import LocalBackend
from tests.tiny_assignment import BUG, write_tiny

SCHEMA_PATH = Path(__file__).resolve().parent / "gradescope_results.schema.json"
ROOT = Path(__file__).resolve().parents[2]
MYTORCH = ROOT / "assignments/mytorch-cnn"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture
def tiny(tmp_path: Path) -> AssignmentSpec:
    return load_spec(write_tiny(tmp_path / "tiny-hw"))


def errors(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return sorted(error.message for error in validator.iter_errors(document))


def mytorch_with(tmp_path: Path, bug: str | None) -> Path:
    known = KnownBug.load(MYTORCH / "bugs" / bug) if bug is not None else None
    return build_handin(MYTORCH / "solution", known, tmp_path / "handin")


@pytest.mark.parametrize("bug", [None, "flipped_kernel", "imports_torch", "mc_wrong_answer"])
def test_mytorch_gradings_validate(
    validator: jsonschema.Draft202012Validator, tmp_path: Path, bug: str | None
) -> None:
    spec = resolve_assignment("mytorch-cnn")
    result = grade_directory(spec, mytorch_with(tmp_path, bug), LocalBackend(), seed=3)
    assert (result.score == 100) is (bug is None)
    assert errors(validator, result.to_gradescope()) == []


def test_a_rejected_archive_validates(
    validator: jsonschema.Draft202012Validator, tmp_path: Path
) -> None:
    garbage = tmp_path / "handin.tar.gz"
    garbage.write_bytes(b"\x1f\x8b not gzip at all" * 20)
    result = grade_path(resolve_assignment("mytorch-cnn"), garbage, LocalBackend())
    assert result.rejected is not None
    document = result.to_gradescope()
    assert document["score"] == 0 and "not graded" in document["output"]
    assert errors(validator, document) == []


def test_leaderboard_is_written_and_validates(
    validator: jsonschema.Draft202012Validator, tiny: AssignmentSpec, tmp_path: Path
) -> None:
    handin = tmp_path / "handin"
    handin.mkdir()
    (handin / "answer.py").write_text(BUG, encoding="utf-8")
    document = grade_directory(tiny, handin, LocalBackend()).to_gradescope()
    assert document["leaderboard"] == [{"name": "Answer", "value": 41.0, "order": "desc"}]
    assert [t["score"] for t in document["tests"]] == [0.0, 5.0]
    assert document["tests"][1]["visibility"] == "after_due_date"
    assert errors(validator, document) == []


def test_no_leaderboard_when_the_test_reported_nothing(tiny: AssignmentSpec) -> None:
    result = rejected(tiny, "the archive is empty")
    assert "leaderboard" not in result.to_gradescope()


def test_an_empty_result_validates(validator: jsonschema.Draft202012Validator) -> None:
    document = GradingResult("x", [], 0.0, output="Nothing to grade.").to_gradescope()
    assert errors(validator, document) == []


# ----------------------------------------------------------------------- the schema can fail

def valid_document(tiny: AssignmentSpec, tmp_path: Path) -> dict[str, Any]:
    handin = tmp_path / "handin"
    handin.mkdir()
    (handin / "answer.py").write_text("VALUE = 42\ndef double(x):\n    return 2 * x\n")
    return grade_directory(tiny, handin, LocalBackend()).to_gradescope()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("score") and [t.pop("score") for t in d["tests"]],
     "is not valid under any of the given schemas"),
    (lambda d: d["tests"][0].update(status="error"), "'error' is not one of ['passed', 'failed']"),
    (lambda d: d.update(visibility="students"), "'students' is not one of "
     "['hidden', 'after_due_date', 'after_published', 'visible']"),
    (lambda d: d["tests"][0].update(number=1), "1 is not of type 'string'"),
    (lambda d: d["tests"][0].update(outcome="passed"),
     "Additional properties are not allowed ('outcome' was unexpected)"),
    (lambda d: d["leaderboard"][0].update(order="up"), "'up' is not one of ['asc', 'desc']"),
    (lambda d: d["leaderboard"][0].pop("value"), "'value' is a required property"),
    (lambda d: d.update(score=-1), "-1 is less than the minimum of 0"),
    (lambda d: d.update(output_format="markdown"),
     "'markdown' is not one of ['text', 'html', 'simple_format', 'md', 'ansi']"),
])
def test_invalid_documents_are_rejected(
    validator: jsonschema.Draft202012Validator, tiny: AssignmentSpec, tmp_path: Path,
    change: Any, message: str,
) -> None:
    document = valid_document(tiny, tmp_path)
    assert errors(validator, document) == []
    broken = copy.deepcopy(document)
    change(broken)
    found = errors(validator, broken)
    assert any(message in error for error in found), found
