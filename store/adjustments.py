"""Manual score adjustments, regrade history and the student's chosen submission.

Adjustments are rows; :mod:`grader.scoring` does their arithmetic (the graded points less
the late penalty, plus every adjustment of the submission, at least 0), called through
:mod:`store.scores`. The grading result itself is never rewritten, so a regrade keeps
every adjustment (they are rows of their own) and the score before it
(:class:`ScoreHistory`, written by ``web.regrade`` in the transaction that resets the
row). Functions flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Assignment, Submission, User, utcnow
from store.web_models import ActiveChoice, ScoreAdjustment, ScoreHistory

MAX_POINTS = 10_000.0


class AdjustmentError(ValueError):
    """The adjustment cannot be made as asked; the message says why."""


def add_adjustment(db: Session, submission: Submission, author: User, points: float,
                   comment: str) -> ScoreAdjustment:
    if not -MAX_POINTS <= points <= MAX_POINTS or points == 0:
        raise AdjustmentError("Give a non-zero number of points (negative to take points).")
    if not comment.strip():
        raise AdjustmentError("Say why in the comment: the student reads it.")
    row = ScoreAdjustment(submission_id=submission.id, author_id=author.id, points=points,
                          comment=comment.strip()[:4000])
    db.add(row)
    db.flush()
    db.refresh(submission, ["adjustments"])
    return row


def history(db: Session, submission_id: int) -> Sequence[ScoreHistory]:
    """Earlier scores of the submission, newest regrade first."""
    return db.scalars(select(ScoreHistory).where(ScoreHistory.submission_id == submission_id)
                      .order_by(ScoreHistory.regraded_at.desc(), ScoreHistory.id.desc())).all()


def unseen_regrades(db: Session, user_id: int) -> Sequence[tuple[ScoreHistory, Submission]]:
    """Regrades of the user's submissions that have finished and that the user has not
    looked at yet (the banner on every page)."""
    query = (select(ScoreHistory, Submission).join(Submission,
                                                   Submission.id == ScoreHistory.submission_id)
             .where(Submission.user_id == user_id, ScoreHistory.seen_at.is_(None),
                    Submission.status.in_(("done", "error")))
             .order_by(ScoreHistory.regraded_at.desc()).limit(5))
    return [(row, sub) for row, sub in db.execute(query).all()]


def mark_seen(db: Session, submission_id: int, now: datetime | None = None) -> None:
    for row in db.scalars(select(ScoreHistory).where(
            ScoreHistory.submission_id == submission_id, ScoreHistory.seen_at.is_(None))):
        row.seen_at = now or utcnow()
    db.flush()


def chosen_submission(db: Session, assignment: Assignment, user_id: int) -> int | None:
    """The submission the student chose to count, where the assignment allows it."""
    if not assignment.students_choose:
        return None
    return db.scalar(select(ActiveChoice.submission_id).where(
        ActiveChoice.assignment_id == assignment.id, ActiveChoice.user_id == user_id))


def choose(db: Session, assignment: Assignment, submission: Submission) -> None:
    if not assignment.students_choose:
        raise AdjustmentError("This assignment counts your best submission; you cannot "
                              "choose another.")
    if submission.status != "done" or submission.assignment_id != assignment.id:
        raise AdjustmentError("Only a graded submission to this assignment can count.")
    found = db.scalars(select(ActiveChoice).where(ActiveChoice.assignment_id == assignment.id,
                                                  ActiveChoice.user_id == submission.user_id)
                       ).first()
    if found is None:
        db.add(ActiveChoice(assignment_id=assignment.id, user_id=submission.user_id,
                            submission_id=submission.id))
    else:
        found.submission_id, found.chosen_at = submission.id, utcnow()
    db.flush()
