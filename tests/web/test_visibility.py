"""web/visibility.py: which tests a student sees, and the score shown with them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from store.models import Assignment, Submission
from tests.web.factories import AuthActions, Factory, World, gs_test
from web.visibility import filtered_results, shown, student_may_see

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BEFORE_DUE = {"due_at": NOW + timedelta(days=1)}
BETWEEN = {"due_at": NOW - timedelta(days=1), "late_due_at": NOW + timedelta(days=1)}
AFTER_ALL = {"due_at": NOW - timedelta(days=2), "late_due_at": NOW - timedelta(days=1)}


def assignment(hidden_after_due: bool = True, **dates: datetime | None) -> Assignment:
    return Assignment(slug="a", title="A", hidden_visible_after_due=hidden_after_due,
                      late_penalty_per_day=0.0, **dates)


@pytest.mark.parametrize("visibility, dates, hidden_after_due, expected", [
    ("visible", BEFORE_DUE, True, True),
    ("after_due_date", BEFORE_DUE, True, False),
    ("after_due_date", BETWEEN, True, False),  # late submissions still open
    ("after_due_date", AFTER_ALL, True, True),
    ("after_due_date", {"due_at": None}, True, False),  # never closes
    ("hidden", BEFORE_DUE, True, False),
    ("hidden", AFTER_ALL, True, True),
    ("hidden", AFTER_ALL, False, False),
    ("after_published", AFTER_ALL, True, False),
    ("something-new", AFTER_ALL, True, False),
])
def test_student_may_see(visibility: str, dates: dict[str, datetime | None],
                         hidden_after_due: bool, expected: bool) -> None:
    assert student_may_see(visibility, assignment(hidden_after_due, **dates), NOW) is expected


def mixed(assignment: Assignment, late_days: int = 0) -> Submission:
    tests = [gs_test(1, "public", 10, 10), gs_test(2, "secret", 5, 20, "hidden", "leak!"),
             gs_test(3, "after", 0, 30, "after_due_date")]
    results = {"score": 15.0, "tests": tests, "output": ""}
    submission = Submission(status="done", results=results, late_days=late_days, score=15.0)
    submission.assignment = assignment
    return submission


def test_score_counts_only_visible_tests() -> None:
    view = shown(mixed(assignment(**BEFORE_DUE)), NOW, staff=False)
    assert [t.name for t in view.tests] == ["public"]
    assert (view.score, view.max_score) == (10, 10)
    assert (view.withheld_tests, view.withheld_points) == (2, 50)


def test_staff_see_everything() -> None:
    view = shown(mixed(assignment(**BEFORE_DUE)), NOW, staff=True)
    assert [t.name for t in view.tests] == ["public", "secret", "after"]
    assert (view.score, view.max_score, view.withheld_tests) == (15, 60, 0)


def test_after_the_due_date_everything_is_shown() -> None:
    view = shown(mixed(assignment(**AFTER_ALL)), NOW, staff=False)
    assert (view.score, view.max_score, view.withheld_tests) == (15, 60, 0)


def test_late_penalty_scales_the_shown_score() -> None:
    late = assignment(**BEFORE_DUE)
    late.late_penalty_per_day = 0.25
    view = shown(mixed(late, late_days=2), NOW, staff=False)
    assert (view.raw_score, view.score, view.penalty) == (10, 5, 0.5)
    assert shown(mixed(late, late_days=9), NOW, staff=False).score == 0


def test_filtered_results_drop_hidden_tests() -> None:
    document = filtered_results(mixed(assignment(**BEFORE_DUE)), NOW, staff=False)
    assert document is not None
    assert [t["name"] for t in document["tests"]] == ["public"]
    assert document["score"] == 10
    assert "leak!" not in str(document)


def test_results_page_hides_hidden_tests(client: FlaskClient, auth: AuthActions, make: Factory,
                                         world: World) -> None:
    tests = [gs_test(1, "Conv1D forward", 20, 20, output="Passed."),
             gs_test(2, "Hidden sizes", 0, 30, "hidden", "expected 3 got 4 (seed 1234)")]
    submission = make.graded(world.alice, world.assignment, tests)
    auth.login(world.alice.email)
    page = client.get(f"/submissions/{submission.id}").get_data(as_text=True)
    assert "Conv1D forward" in page and "20 / 20" in page
    assert "Hidden sizes" not in page and "seed 1234" not in page
    assert "1 more test (30 points) will be shown after the due date." in page


def test_student_output_is_escaped(client: FlaskClient, auth: AuthActions, make: Factory,
                                   world: World) -> None:
    tests = [gs_test(1, "<b>name</b>", 0, 5, output="<script>alert(1)</script>")]
    submission = make.graded(world.alice, world.assignment, tests)
    auth.login(world.alice.email)
    page = client.get(f"/submissions/{submission.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;name&lt;/b&gt;" in page


def test_late_note_does_not_leak_the_hidden_total() -> None:
    late = assignment(**BEFORE_DUE)
    late.late_penalty_per_day = 0.1
    submission = mixed(late, late_days=2)
    assert submission.results is not None
    submission.results["output"] = "Submitted 2 days late: the score of 15 is reduced by 20% to 12."
    document = filtered_results(submission, NOW, staff=False)
    assert document is not None
    assert document["output"] == "Submitted 2 days late: 20% is taken off."
    assert document["score"] == 8
