"""A stored submission's result and score, for every surface that shows one.

The worker stores the grading as dlgrade's record (:meth:`GradingResult.to_record`); the
score is never stored finished. It is computed when shown, by :mod:`grader.scoring`, from
the record's tests, the submission's late days, the assignment's late penalty *now* and
staff's adjustments, so that a changed penalty or a new adjustment reaches the student's
pages, the staff pages, the gradebooks, the API and the webhooks at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from grader.results import GradingResult, TestResult
from grader.scoring import Late, Score, score
from store.models import Submission


def late_of(submission: Submission) -> Late:
    """The late policy in force for ``submission``: its late days at upload, the
    assignment's current penalty per day."""
    return Late(submission.late_days, submission.assignment.late_penalty_per_day)


def stored_result(submission: Submission) -> GradingResult | None:
    """The submission's grading under the late policy in force (None before one)."""
    if submission.results is None:
        return None
    return replace(GradingResult.from_record(dict(submission.results)), late=late_of(submission))


def adjustments_of(submission: Submission) -> list[float]:
    return [adjustment.points for adjustment in submission.adjustments]


def submission_score(submission: Submission,
                     visible: Callable[[TestResult], bool] | None = None) -> Score | None:
    """The score of the tests ``visible`` picks (every test by default: the staff view),
    None for a submission without a score."""
    result = stored_result(submission)
    if result is not None:
        return result.total(visible, adjustments_of(submission))
    if submission.score is None:
        return None
    return score(submission.score, submission.max_score or 0.0, late_of(submission),
                 adjustments_of(submission))


def total(submission: Submission) -> float | None:
    """The score that counts, as staff see it (every test)."""
    found = submission_score(submission)
    return None if found is None else found.total
