"""Results and their one serialiser, checked against Gradescope's results.json format.

Golden files: ``DLGRADE_UPDATE_GOLDEN=1 pytest tests/grader/test_results.py`` rewrites
``golden/*.json`` from the current serialiser; review the diff before committing it.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader.grade import json_safe
from grader.outcomes import STUDENT_MESSAGES, Outcome, gradescope_status
from grader.results import MAX_TEST_OUTPUT_CHARS, GradingResult
from grader.results import TestResult as OneTest  # "Test*" names would be collected

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE_GOLDEN = os.environ.get("DLGRADE_UPDATE_GOLDEN") == "1"

TOP_KEYS = {"score", "execution_time", "output", "visibility", "stdout_visibility", "tests"}
TEST_KEYS = {"name", "number", "score", "max_score", "status", "output", "visibility", "tags"}
VISIBILITY = {"enum": ["visible", "hidden", "after_due_date", "after_published"]}

# The part of Gradescope's results.json format that dlgrade writes, as JSON Schema.
GRADESCOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": sorted(TOP_KEYS),
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number", "minimum": 0},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": sorted(TEST_KEYS),
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string"},
                    "number": {"type": "string"},
                    "score": {"type": "number", "minimum": 0},
                    "max_score": {"type": "number", "minimum": 0},
                    "status": {"enum": ["passed", "failed"]},
                    "output": {"type": "string"},
                    "visibility": VISIBILITY,
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def schema_errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """A hand-written checker for the JSON Schema keywords GRADESCOPE_SCHEMA uses."""
    kinds = {"object": dict, "array": list, "string": str, "number": (int, float)}
    kind = schema.get("type")
    if kind and (not isinstance(value, kinds[kind]) or isinstance(value, bool)):
        return [f"{where}: {value!r} is not of type {kind}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: {value!r} is less than {schema['minimum']}")
    if kind == "object":
        properties = schema.get("properties", {})
        missing = [key for key in schema["required"] if key not in value]
        errors += [f"{where}: {key!r} is required" for key in missing]
        if schema.get("additionalProperties") is False:
            errors += [f"{where}: {key!r} is not allowed" for key in value if key not in properties]
        for key, sub in properties.items():
            if key in value:
                errors += schema_errors(value[key], sub, f"{where}.{key}")
    if kind == "array":
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{i}]")
    return errors


def assert_valid(document: dict[str, Any]) -> None:
    assert schema_errors(document, GRADESCOPE_SCHEMA) == []
    if importlib.util.find_spec("jsonschema") is not None:
        import jsonschema

        jsonschema.validate(document, GRADESCOPE_SCHEMA)


def make_test(
    outcome: Outcome = Outcome.PASSED, score: float = 10.0, **overrides: Any
) -> OneTest:
    fields: dict[str, Any] = {
        "name": "Conv1D forward", "number": "1", "max_score": 10.0, "score": score,
        "outcome": outcome, "output": STUDENT_MESSAGES[outcome],
    }
    return OneTest(**{**fields, **overrides})


def basic_result() -> GradingResult:
    """A fixed result covering passed, partial, failed-by-timeout, hidden and tagged tests."""
    tests = [
        make_test(name="Multiple choice", number="1", max_score=5, score=5, tags=("mc",)),
        make_test(Outcome.FAILED, 6.6666666, name="Conv1D forward", number="2", max_score=20,
                  output="forward(x): values differ from the reference: 3 of 60 elements differ",
                  staff_detail="STAFF-ONLY traceback"),
        make_test(Outcome.TIMEOUT, 0, name="CNN model", number="3", max_score=15,
                  output="Time limit: 120 s.", visibility="hidden"),
        make_test(Outcome.ERROR, 0, name="Distributed scanning MLP", number="4", max_score=10,
                  output=STUDENT_MESSAGES[Outcome.ERROR], staff_detail="Traceback (STAFF-ONLY)"),
    ]
    return GradingResult(
        "mytorch-cnn", tests, execution_time=12.345678, output="Graded with seed 7.",
        sandbox="process", staff_log=["seed=7 STAFF-ONLY"],
    )


def test_gradescope_document_has_exactly_the_documented_keys() -> None:
    document = basic_result().to_gradescope()
    assert set(document) == TOP_KEYS
    assert [set(test) for test in document["tests"]] == [TEST_KEYS] * 4


def test_document_validates_against_the_gradescope_schema() -> None:
    document = basic_result().to_gradescope()
    assert_valid(document)
    assert json.loads(json.dumps(document)) == document


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda d: d["tests"][0].update(status="timeout"), "$.tests[0].status"),
        (lambda d: d.pop("stdout_visibility"), "'stdout_visibility' is required"),
        (lambda d: d.update(extra=1), "'extra' is not allowed"),
        (lambda d: d["tests"][1].update(number=2), "$.tests[1].number: 2 is not of type string"),
        (lambda d: d.update(score=True), "$.score: True is not of type number"),
    ],
    ids=["bad-status", "missing-key", "extra-key", "int-number", "bool-score"],
)
def test_the_schema_checker_catches_bad_documents(mutate: Any, error: str) -> None:
    document = basic_result().to_gradescope()
    mutate(document)
    errors = schema_errors(document, GRADESCOPE_SCHEMA)
    assert any(error in e for e in errors), errors


@pytest.mark.parametrize("outcome", list(Outcome))
def test_status_is_passed_only_for_passed(outcome: Outcome) -> None:
    status = make_test(outcome).to_gradescope()["status"]
    assert status == ("passed" if outcome is Outcome.PASSED else "failed")
    assert gradescope_status(outcome) == status


def test_every_outcome_has_a_student_message_and_the_vocabulary_is_closed() -> None:
    assert {o.value for o in Outcome} == {
        "passed", "failed", "timeout", "oom", "crash", "error", "killed"
    }
    assert set(STUDENT_MESSAGES) == set(Outcome)
    assert all(message.endswith(".") for message in STUDENT_MESSAGES.values())


def test_passed_property_follows_the_outcome_not_the_score() -> None:
    assert make_test(Outcome.PASSED).passed
    assert not make_test(Outcome.FAILED, score=10.0).passed


def test_scores_sum_and_are_rounded() -> None:
    result = basic_result()
    assert result.score == pytest.approx(11.6666666)
    assert result.max_score == 50
    document = result.to_gradescope()
    assert document["score"] == 11.6667
    assert [t["score"] for t in document["tests"]] == [5, 6.6667, 0, 0]
    assert sum(t["max_score"] for t in document["tests"]) == 50


def test_execution_time_is_rounded_to_milliseconds() -> None:
    assert basic_result().to_gradescope()["execution_time"] == 12.346


def test_empty_result_serialises() -> None:
    document = GradingResult("demo", [], execution_time=0.0).to_gradescope()
    assert document["score"] == 0 and document["tests"] == []
    assert_valid(document)


def test_long_output_is_truncated_with_a_marker() -> None:
    long = "x" * (MAX_TEST_OUTPUT_CHARS + 500)
    output = make_test(Outcome.FAILED, 0, output=long).to_gradescope()["output"]
    assert output == "x" * MAX_TEST_OUTPUT_CHARS + "\n…[output truncated]"
    exact = "y" * MAX_TEST_OUTPUT_CHARS
    assert make_test(output=exact).to_gradescope()["output"] == exact


def test_staff_details_never_reach_the_document() -> None:
    text = json.dumps(basic_result().to_gradescope())
    assert "STAFF-ONLY" not in text
    for private in ("staff_detail", "staff_log", "Traceback", '"process"', "mytorch-cnn"):
        assert private not in text


def test_visibility_and_tags_are_carried_over() -> None:
    document = basic_result().to_gradescope()
    assert document["visibility"] == "visible"
    assert document["stdout_visibility"] == "hidden"
    assert [t["visibility"] for t in document["tests"]] == ["visible"] * 2 + ["hidden", "visible"]
    assert document["tests"][0]["tags"] == ["mc"]
    assert document["tests"][1]["tags"] == []


def test_matches_golden_results_json() -> None:
    golden = GOLDEN / "results_basic.json"
    text = json.dumps(basic_result().to_gradescope(), indent=2, ensure_ascii=False) + "\n"
    if UPDATE_GOLDEN:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), "no golden file: run with DLGRADE_UPDATE_GOLDEN=1 to write it"
    assert text == golden.read_text(encoding="utf-8")


def test_extra_data_is_written_only_when_a_check_kept_some() -> None:
    plain = OneTest("t", "1", 5.0, 5.0, Outcome.PASSED, "ok")
    assert "extra_data" not in plain.to_gradescope()
    kept = OneTest("t", "1", 5.0, 5.0, Outcome.PASSED, "ok",
                      extra_data={"curves": {"train_loss": [1.0, 0.5]}})
    assert kept.to_gradescope()["extra_data"] == {"curves": {"train_loss": [1.0, 0.5]}}


def test_json_safe_turns_what_json_refuses_into_plain_data() -> None:
    value = {"loss": [1.0, float("nan"), float("inf")], "n": np.int64(3), 4: (np.float32(0.5),),
             "other": Outcome.PASSED}
    assert json_safe(value) == {"loss": [1.0, None, None], "n": 3, "4": [0.5],
                                "other": str(Outcome.PASSED)}
