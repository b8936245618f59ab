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
``max_score`` are sums over the visible tests, and the page says how many points are
withheld until the due date. The late penalty (``late_penalty_per_day`` times the
submission's ``late_days``, at most 100 %) scales that score, as the worker scales the
stored total; staff's manual adjustments are then added (``store.adjustments.adjusted``).
Staff see every test and the stored total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.adjustments import adjusted, total_adjustment
from store.models import Assignment, Submission
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
    raw_score: float  # sum over ``tests``, before the late penalty
    score: float  # after the late penalty
    max_score: float
    withheld_tests: int
    withheld_points: float
    penalty: float  # the fraction taken off for lateness
    adjustment: float = 0.0  # staff's manual adjustments, in points (store.adjustments)


LATE_NOTE_START = "Submitted "  # tasks.jobs.apply_late_penalty's note


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
    return min(1.0, max(0.0, assignment.late_penalty_per_day * late_days))


def test_lines(submission: Submission) -> list[TestLine]:
    """Per-test rows when the worker stored them, else the Gradescope document's tests."""
    documented = _document_tests(submission.results)
    if submission.tests:
        curves = {(str(raw.get("number", "")), str(raw.get("name", ""))): _curves(raw)
                  for raw in documented}
        return [
            TestLine(t.number, t.name, t.score, t.max_score, t.outcome, t.output, t.visibility,
                     t.staff_detail, curves.get((t.number, t.name)))
            for t in submission.tests
        ]
    return [_from_document(raw) for raw in documented]


def _curves(raw: dict[str, Any]) -> dict[str, list[float | None]] | None:
    """The training curves a check kept, if they are well-formed (the document is ours,
    but a malformed one must not break the page)."""
    extra = raw.get("extra_data")
    curves = extra.get("curves") if isinstance(extra, dict) else None
    if not isinstance(curves, dict):
        return None
    kept = {
        str(name): [float(v) if isinstance(v, int | float) else None for v in values]
        for name, values in curves.items() if isinstance(values, list)
    }
    return kept or None


def shown(submission: Submission, now: datetime, *, staff: bool) -> Shown:
    assignment = submission.assignment
    every = test_lines(submission)
    tests: list[TestLine] = []
    withheld: list[TestLine] = []
    for test in every:
        seen = staff or student_may_see(test.visibility, assignment, now)
        (tests if seen else withheld).append(test)
    raw = sum(t.score for t in tests)
    penalty = late_penalty(assignment, submission.late_days)
    changes = list(submission.adjustments)
    return Shown(
        tests=tuple(tests),
        raw_score=raw,
        score=adjusted(round(raw * (1.0 - penalty), 4), changes) or 0.0,
        adjustment=total_adjustment(changes),
        max_score=sum(t.max_score for t in tests),
        withheld_tests=len(withheld),
        withheld_points=sum(t.max_score for t in withheld),
        penalty=penalty,
    )


def filtered_results(
    submission: Submission, now: datetime, *, staff: bool
) -> dict[str, Any] | None:
    """The stored Gradescope document as this audience may see it.

    Staff get it as stored. Students get only the tests they may see; ``score`` becomes
    the shown score (visible tests, late penalty applied, like the stored one), and the
    worker's late note, which quotes the full total, is replaced while tests are withheld.
    """
    if submission.results is None:
        return None
    document = dict(submission.results)
    if staff:
        return document
    view = shown(submission, now, staff=False)
    kept = {(t.number, t.name) for t in view.tests}
    document["tests"] = [
        test for test in _document_tests(document)
        if (str(test.get("number", "")), str(test.get("name", ""))) in kept
    ]
    document["score"] = view.score
    if view.withheld_tests:
        document["output"] = _without_late_note(str(document.get("output") or ""), view,
                                                submission.late_days)
    return document


def _without_late_note(output: str, view: Shown, late_days: int) -> str:
    first, _, rest = output.partition("\n\n")
    if not (first.startswith(LATE_NOTE_START) and " late: " in first):
        return output
    if not view.penalty:
        return rest
    plural = "" if late_days == 1 else "s"
    note = f"Submitted {late_days} day{plural} late: {view.penalty * 100:g}% is taken off."
    return f"{note}\n\n{rest}" if rest else note


def best(submissions: list[Submission], now: datetime) -> Shown | None:
    """The student's best finished submission, as the student sees it."""
    views = [shown(s, now, staff=False) for s in submissions if s.status == "done"]
    return max(views, key=lambda view: view.score, default=None)


def _document_tests(document: dict[str, Any] | None) -> list[dict[str, Any]]:
    tests = (document or {}).get("tests")
    return [t for t in tests if isinstance(t, dict)] if isinstance(tests, list) else []


def _from_document(raw: dict[str, Any]) -> TestLine:
    return TestLine(
        number=str(raw.get("number", "")),
        name=str(raw.get("name", "")),
        score=float(raw.get("score", 0.0)),
        max_score=float(raw.get("max_score", 0.0)),
        outcome=str(raw.get("status", "")),
        output=str(raw.get("output", "")),
        visibility=str(raw.get("visibility", "visible")),
        curves=_curves(raw),
    )


def earlier_score(history: ScoreHistory, submission: Submission, now: datetime, *,
                  staff: bool) -> tuple[float | None, float | None]:
    """A score the submission had before a regrade, as this audience may see it now:
    staff the stored total; a student the tests they may see, with the late penalty and
    the adjustments applied as to the current score."""
    if staff or history.score is None:
        return history.score, history.max_score
    assignment = submission.assignment
    seen = [t for t in history.tests
            if student_may_see(str(t.get("visibility", "hidden")), assignment, now)]
    raw = sum(float(t.get("score", 0.0)) for t in seen)
    penalty = late_penalty(assignment, submission.late_days)
    score = adjusted(round(raw * (1.0 - penalty), 4), list(submission.adjustments))
    return score, sum(float(t.get("max_score", 0.0)) for t in seen)
