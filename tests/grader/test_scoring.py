"""grader/scoring.py: the one rule for a score (graded points, late penalty, adjustments),
and the stored record of a result (``to_record`` / ``from_record``) that carries the late
policy as fields."""

from __future__ import annotations

import json

import pytest

from grader.outcomes import Outcome
from grader.results import GradingResult, LeaderboardEntry
from grader.results import TestResult as OneTest  # "Test*" names would be collected
from grader.scoring import ON_TIME, Late, late_note, score


@pytest.mark.parametrize(
    ("days", "per_day", "expected"),
    [(0, 0.1, 50.0), (1, 0.0, 50.0), (1, 0.1, 45.0), (3, 0.25, 12.5), (11, 0.1, 0.0),
     (-1, 0.5, 50.0), (2, -0.1, 50.0)],
)
def test_the_late_penalty_scales_the_graded_points(days: int, per_day: float,
                                                   expected: float) -> None:
    scored = score(50.0, 60.0, Late(days, per_day))
    assert scored.total == scored.late_score == expected
    assert (scored.graded, scored.max_score, scored.adjustment) == (50.0, 60.0, 0.0)
    assert 0.0 <= scored.penalty <= 1.0


def test_adjustments_come_after_the_penalty_and_the_total_stops_at_zero() -> None:
    assert score(15, 15, Late(2, 0.25), [1.0]).total == 8.5  # 15 * 0.5 + 1
    assert score(15, 15, Late(9, 0.25), [1.0]).total == 1.0  # the penalty stops at 100 %
    assert score(3, 15, ON_TIME, [-5.0, 1.0]).total == 0.0  # never below 0
    assert score(3, 15, ON_TIME, [-5.0, 1.0]).adjustment == -4.0
    assert score(1 / 3, 1, Late(1, 0.1)).total == 0.3  # rounded to 4 places


def test_the_late_note_is_made_from_the_fields() -> None:
    scored = score(15, 15, Late(2, 0.1))
    assert late_note(scored) == "Submitted 2 days late: the score of 15 is reduced by 20% to 12."
    assert late_note(scored, every_test=False) == "Submitted 2 days late: 20% is taken off."
    assert late_note(score(15, 15, Late(1, 0.5))) == (
        "Submitted 1 day late: the score of 15 is reduced by 50% to 7.5.")
    assert late_note(score(15, 15, Late(2, 0.0))) is None
    assert late_note(score(15, 15)) is None


def result() -> GradingResult:
    tests = [
        OneTest("Multiple choice", "1", 5, 5, Outcome.PASSED, "Passed.", tags=("mc",),
                metrics={"accuracy": 0.9}, extra_data={"curves": {"loss": [1.0, 0.5]}}),
        OneTest("Hidden sizes", "2", 10, 0, Outcome.TIMEOUT, "Time limit: 60 s.",
                visibility="hidden", staff_detail="STAFF-ONLY traceback"),
        OneTest("Later", "3", 10, 7.5, Outcome.FAILED, "Partial.", visibility="after_due_date"),
    ]
    return GradingResult("tiny-hw", tests, 1.25, output="Graded with seed 7.",
                         sandbox="process", variant="spring-2021", late=Late(2, 0.1),
                         leaderboard=[LeaderboardEntry("Accuracy", 0.9)])


def test_a_record_round_trips_every_stored_field() -> None:
    original = result()
    record = json.loads(json.dumps(original.to_record()))  # as the JSON column keeps it
    assert record["record"] == 2 and record["late"] == {"days": 2, "per_day": 0.1}
    back = GradingResult.from_record(record)
    assert back.to_record() == original.to_record()
    assert back.tests[1].outcome is Outcome.TIMEOUT  # the closed vocabulary, not passed/failed
    assert back.tests[1].staff_detail == "STAFF-ONLY traceback"
    assert (back.late, back.variant, back.sandbox) == (Late(2, 0.1), "spring-2021", "process")


def test_to_gradescope_scores_the_tests_an_audience_sees() -> None:
    graded = result()
    staff = graded.to_gradescope(adjustments=[1.0])
    assert staff["score"] == round(12.5 * 0.8 + 1, 4)
    assert staff["output"] == ("Submitted 2 days late: the score of 12.5 is reduced by 20% to "
                               "10.\n\nGraded with seed 7.")
    student = graded.to_gradescope(lambda t: t.visibility == "visible")
    assert [t["name"] for t in student["tests"]] == ["Multiple choice"]
    assert student["score"] == 4.0  # 5 less 20 %
    assert student["output"] == "Submitted 2 days late: 20% is taken off.\n\nGraded with seed 7."
    assert "STAFF-ONLY" not in json.dumps(staff) + json.dumps(student)


def test_the_previous_stored_form_is_read_for_one_release() -> None:
    """A Gradescope document stored by the worker before records: the late note it put in
    the output goes (lateness is a field now), passed/failed become outcomes."""
    document = {
        "score": 12.0, "execution_time": 1.0, "visibility": "visible",
        "stdout_visibility": "hidden",
        "output": "Submitted 2 days late: the score of 15 is reduced by 20% to 12.\n\nHello.",
        "tests": [{"name": "A", "number": "1", "score": 10, "max_score": 10,
                   "status": "passed", "output": "", "visibility": "visible", "tags": []},
                  {"name": "B", "number": "2", "score": 5, "max_score": 10,
                   "status": "failed", "output": "no", "visibility": "hidden", "tags": []}],
    }
    read = GradingResult.from_record(document)
    assert read.output == "Hello."
    assert [t.outcome for t in read.tests] == [Outcome.PASSED, Outcome.FAILED]
    assert read.score == 15 and read.late == ON_TIME
    assert GradingResult.from_record({**document, "output": "Submitted late, sorry"}).output == (
        "Submitted late, sorry")  # only the worker's own note is taken out
