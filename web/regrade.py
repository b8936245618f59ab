"""Regrading: put a finished submission back in the queue as if it had just arrived."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from store.leases import rowcount
from store.models import Submission, TestScore

BUSY = "This submission is being graded right now; regrade it once it has finished."


class CannotRegrade(Exception):
    pass


def requeue(db: Session, submission: Submission) -> None:
    """Reset ``submission`` to ``queued`` with attempt 0 and no result, and commit.

    Only a ``done``, ``error`` or ``queued`` row is reset: a ``running`` one still has a
    worker holding its lease, which would write its result over the new attempt.
    The update is conditional on the status, so a worker claiming the row in between
    makes this raise instead of racing it.
    """
    if submission.status == "running":
        raise CannotRegrade(BUSY)
    reset = (
        update(Submission)
        .where(Submission.id == submission.id, Submission.status != "running")
        .values(
            status="queued", attempt=0, lease_until=None, worker=None, enqueued_at=None,
            started_at=None, finished_at=None, score=None, max_score=None,
            grading_seconds=None, results=None, error=None, staff_detail=None,
        )
    )
    if rowcount(db.execute(reset)) != 1:
        db.rollback()
        raise CannotRegrade(BUSY)
    db.execute(delete(TestScore).where(TestScore.submission_id == submission.id))
    db.commit()
    db.refresh(submission)
