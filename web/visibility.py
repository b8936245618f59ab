"""What a student may see of a result, and the score shown with it.

The rules, per test (Gradescope's vocabulary):

* ``visible``: always.
* ``after_due_date``: once submissions have closed, i.e. after the late due date when
  the assignment has one, else after the due date. Not before: while anyone can still
  hand in, a revealed test would tell them what the hidden checks are. So a student
  with an extension (:mod:`web.extensions`) keeps these withheld from *everyone* until
  their own submissions close (their late due date, else their extended due date);
  granting an extension after the due date hides them again until then.
  An assignment without a due date never closes, so these stay withheld.
* ``hidden``: withheld; shown after submissions close only if the assignment has
  ``hidden_visible_after_due``.
* ``after_published``: withheld (staff cannot publish yet).

The score a student sees counts only the tests they can see: ``score`` and
``max_score`` are over the visible tests, and the page says how many points are withheld
until the due date. The score itself is :mod:`grader.scoring`'s, through
:mod:`store.scores` (the late penalty in force, then staff's manual adjustments); staff
see every test, so their score is the gradebooks' and the API's. This module only decides
which tests an audience sees, and shows the stored record (``GradingResult.from_record``)
accordingly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from grader.results import TestResult
from grader.scoring import Late, score
from store.models import Assignment, Submission
from store.scores import adjustments_of, late_of, stored_result, submission_score
from store.web_models import ScoreHistory
from web.extensions import extended_deadlines


@dataclass(frozen=True)
class TestLine:
    number: str
    name: str
    score: float
    max_score: float
    outcome: str
    output: str
    visibility: str
    staff_detail: str = ""
    curves: dict[str, list[float | None]] | None = None  # extra_data["curves"], if any

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class Shown:
    """One submission as one audience sees it."""

    tests: tuple[TestLine, ...]
    raw_score: float  # what ``tests`` earned, before the late penalty
    score: float  # the score that counts (grader.scoring)
    max_score: float
    withheld_tests: int
    withheld_points: float
    penalty: float  # the fraction taken off for lateness
    adjustment: float = 0.0  # staff's manual adjustments, in points (store.adjustments)


def submissions_close(assignment: Assignment) -> datetime | None:
    """When the last student's submissions close: the assignment's late due date (else
    its due date), or a later one given by a per-student extension."""
    own = assignment.late_due_at or assignment.due_at
    if own is None:
        return None  # never closes; an extension needs a due date to extend
    extended = (extended_deadlines(assignment, e).closes_at for e in assignment.extensions)
    return max([own, *(moment for moment in extended if moment is not None)])


def student_may_see(visibility: str, assignment: Assignment, now: datetime) -> bool:
    if visibility == "visible":
        return True
    close = submissions_close(assignment)
    closed = close is not None and now >= close
    if visibility == "after_due_date":
        return closed
    if visibility == "hidden":
        return closed and assignment.hidden_visible_after_due
    return False  # after_published, and anything unknown


def late_penalty(assignment: Assignment, late_days: int) -> float:
    return Late(late_days, assignment.late_penalty_per_day).penalty


def seen_by(submission: Submission, now: datetime, *,
            staff: bool) -> Callable[[TestResult], bool] | None:
    """Which tests of ``submission`` this audience sees (None: every test)."""
    if staff:
        return None
    assignment = submission.assignment
    return lambda test: student_may_see(test.visibility, assignment, now)


def test_lines(submission: Submission) -> list[TestLine]:
    """The stored record's tests, as the pages show them."""
    result = stored_result(submission)
    return [_line(test) for test in result.tests] if result is not None else []


def _line(test: TestResult) -> TestLine:
    return TestLine(test.number, test.name, test.score, test.max_score, str(test.outcome),
                    test.output, test.visibility, test.staff_detail,
                    _curves(test.extra_data))


def _curves(extra: dict[str, Any]) -> dict[str, list[float | None]] | None:
    """The training curves a check kept, if they are well-formed (the record is ours,
    but a malformed one must not break the page)."""
    curves = extra.get("curves")
    if not isinstance(curves, dict):
        return None
    kept = {
        str(name): [float(v) if isinstance(v, int | float) else None for v in values]
        for name, values in curves.items() if isinstance(values, list)
    }
    return kept or None


def shown(submission: Submission, now: datetime, *, staff: bool) -> Shown:
    visible = seen_by(submission, now, staff=staff)
    result = stored_result(submission)
    every = result.tests if result is not None else []
    tests = [t for t in every if visible is None or visible(t)]
    withheld = [t for t in every if visible is not None and not visible(t)]
    scored = (result.total(visible, adjustments_of(submission)) if result is not None
              else submission_score(submission))
    return Shown(
        tests=tuple(_line(t) for t in tests),
        raw_score=scored.graded if scored else 0.0,
        score=scored.total if scored else 0.0,
        adjustment=scored.adjustment if scored else 0.0,
        max_score=scored.max_score if scored else 0.0,
        withheld_tests=len(withheld),
        withheld_points=sum(t.max_score for t in withheld),
        penalty=late_of(submission).penalty,
    )


def filtered_results(
    submission: Submission, now: datetime, *, staff: bool
) -> dict[str, Any] | None:
    """The result as Gradescope's ``results.json``, as this audience may see it: staff
    every test, students only those they may see; the score and the late note are those
    of the tests shown (``GradingResult.to_gradescope``)."""
    result = stored_result(submission)
    if result is None:
        return None
    return result.to_gradescope(seen_by(submission, now, staff=staff),
                                adjustments_of(submission))


def best(submissions: list[Submission], now: datetime) -> Shown | None:
    """The student's best finished submission, as the student sees it."""
    views = [shown(s, now, staff=False) for s in submissions if s.status == "done"]
    return max(views, key=lambda view: view.score, default=None)


def earlier_score(history: ScoreHistory, submission: Submission, now: datetime, *,
                  staff: bool) -> tuple[float | None, float | None]:
    """A score the submission had before a regrade, as this audience may see it now: the
    tests it may see (staff: every one), with the late penalty in force and the
    adjustments applied as to the current score (grader.scoring)."""
    if history.score is None:
        return None, history.max_score
    if not history.tests:  # kept before tests were; its score is all there is
        return history.score, history.max_score
    assignment = submission.assignment
    seen = [t for t in history.tests if staff or student_may_see(
        str(t.get("visibility", "hidden")), assignment, now)]
    scored = score(sum(float(t.get("score", 0.0)) for t in seen),
                   sum(float(t.get("max_score", 0.0)) for t in seen), late_of(submission),
                   adjustments_of(submission))
    return scored.total, scored.max_score
