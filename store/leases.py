"""The claim protocol of a submission row: lease plus attempt counter.

A worker *claims* a row with one conditional UPDATE (queued, or running with an expired
lease), which bumps ``attempt``; only one of several concurrent claimers can win. While
grading it *renews* the lease; it *finishes* with one conditional UPDATE that matches
only its own attempt and worker, so a worker that lost its lease cannot overwrite the
result of the attempt that replaced it. Every function commits or rolls back itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, CursorResult, and_, delete, or_, select, update
from sqlalchemy.orm import Session

from store.lti_scores import mark_stale
from store.models import Submission, TestScore, utcnow
from store.webhooks import record_completion

ClaimStatus = Literal["claimed", "busy", "not-claimed", "exhausted"]

EXHAUSTED_MESSAGE = (
    "Grading failed {attempts} times in a row; course staff have been notified."
)


@dataclass(frozen=True)
class Claim:
    """What a claim attempt found. ``attempt`` is meaningful when claimed or exhausted;
    ``lease_until`` when claimed (our lease) or busy (somebody else's)."""

    status: ClaimStatus
    attempt: int = 0
    lease_until: datetime | None = None


def rowcount(result: Any) -> int:
    """Rows matched by an UPDATE / DELETE executed through a Session."""
    return int(cast("CursorResult[Any]", result).rowcount)


def lease_expired(now: datetime) -> ColumnElement[bool]:
    return or_(Submission.lease_until.is_(None), Submission.lease_until <= now)


def claimable(now: datetime) -> ColumnElement[bool]:
    """Queued, or running under a lease that has expired (its worker is presumed dead)."""
    return or_(
        Submission.status == "queued",
        and_(Submission.status == "running", lease_expired(now)),
    )


def claim(
    db: Session, submission_id: int, worker: str, lease_seconds: float, max_attempts: int,
    now: datetime | None = None,
) -> Claim:
    """Try to take ``submission_id`` for ``worker``; see :class:`Claim`.

    When the new attempt would exceed ``max_attempts`` the row ends as ``error`` instead
    (the poison-message cap) and the result is ``exhausted``.
    """
    now = now or utcnow()
    lease_until = now + timedelta(seconds=lease_seconds)
    taken = db.execute(
        update(Submission)
        .where(Submission.id == submission_id, claimable(now))
        .values(status="running", attempt=Submission.attempt + 1, lease_until=lease_until,
                worker=worker, started_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(taken) != 1:
        db.rollback()
        return _why_not(db, submission_id, now)
    attempt = int(db.scalar(select(Submission.attempt).where(Submission.id == submission_id)) or 0)
    if attempt > max_attempts:
        _give_up(db, submission_id, attempt, max_attempts, now)
        db.commit()
        return Claim("exhausted", attempt - 1)
    db.commit()
    return Claim("claimed", attempt, lease_until)


def _why_not(db: Session, submission_id: int, now: datetime) -> Claim:
    row = db.execute(
        select(Submission.status, Submission.lease_until).where(Submission.id == submission_id)
    ).first()
    db.rollback()
    if row is not None and row.status == "running" and row.lease_until is not None \
            and row.lease_until > now:
        return Claim("busy", lease_until=row.lease_until)
    return Claim("not-claimed")


def _give_up(db: Session, submission_id: int, attempt: int, max_attempts: int,
             now: datetime) -> None:
    """Mark the row ``error``; the staff detail keeps what the last attempt left."""
    previous = db.execute(
        select(Submission.worker, Submission.staff_detail).where(Submission.id == submission_id)
    ).one()
    note = (f"Gave up after {max_attempts} attempts; the last one did not finish "
            "(its worker died, timed out or raised).")
    detail = f"{note}\n{previous.staff_detail}" if previous.staff_detail else note
    db.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.attempt == attempt)
        .values(status="error", attempt=attempt - 1, lease_until=None, finished_at=now,
                error=EXHAUSTED_MESSAGE.format(attempts=max_attempts), staff_detail=detail)
        .execution_options(synchronize_session=False)
    )
    record_completion(db, submission_id, now)
    mark_stale(db, submission_id, now)


def _mine(submission_id: int, attempt: int, worker: str) -> ColumnElement[bool]:
    return and_(
        Submission.id == submission_id, Submission.attempt == attempt,
        Submission.worker == worker, Submission.status == "running",
    )


def renew(db: Session, submission_id: int, attempt: int, worker: str, lease_seconds: float,
          now: datetime | None = None) -> bool:
    """Extend our lease; False when the row is no longer ours."""
    until = (now or utcnow()) + timedelta(seconds=lease_seconds)
    result = db.execute(
        update(Submission).where(_mine(submission_id, attempt, worker))
        .values(lease_until=until).execution_options(synchronize_session=False)
    )
    db.commit()
    return rowcount(result) == 1


def release(db: Session, submission_id: int, attempt: int, worker: str, staff_detail: str,
            now: datetime | None = None) -> bool:
    """After a failed attempt: expire our lease at once (so a retry can claim the row
    without waiting) and keep ``staff_detail`` for the staff. The status stays running."""
    result = db.execute(
        update(Submission).where(_mine(submission_id, attempt, worker))
        .values(lease_until=now or utcnow(), staff_detail=staff_detail)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    return rowcount(result) == 1


def requeue(db: Session, submission_id: int, attempt: int, worker: str, staff_detail: str,
            now: datetime | None = None) -> bool:
    """After an attempt the *host* could not carry out (its scratch space full, no
    sandbox runtime): give the row back as ``queued`` with the attempt not counted, so
    another worker grades it and the submission's own attempts are untouched."""
    now = now or utcnow()
    result = db.execute(
        update(Submission).where(_mine(submission_id, attempt, worker))
        .values(status="queued", attempt=attempt - 1, lease_until=None, worker=None,
                started_at=None, enqueued_at=now, staff_detail=staff_detail)
        .execution_options(synchronize_session=False)
    )
    db.commit()
    return rowcount(result) == 1


def holder(db: Session, submission_id: int) -> tuple[str, int] | None:
    """(worker, attempt) of the live or expired lease on a running row, if any."""
    row = db.execute(select(Submission.worker, Submission.attempt)
                     .where(Submission.id == submission_id, Submission.status == "running")
                     ).first()
    db.rollback()
    if row is None or row.worker is None:
        return None
    return str(row.worker), int(row.attempt)


def break_lease(db: Session, submission_id: int, worker: str, attempt: int,
                now: datetime | None = None) -> bool:
    """Expire the lease ``worker`` holds for ``attempt`` (it is known to be dead: a
    killed pool process), so the row can be claimed at once rather than when the lease
    would have run out. The attempt stays counted: the death may be the handin's."""
    now = now or utcnow()
    result = db.execute(
        update(Submission)
        .where(_mine(submission_id, attempt, worker), ~lease_expired(now))
        .values(lease_until=now).execution_options(synchronize_session=False)
    )
    db.commit()
    return rowcount(result) == 1


def finish(db: Session, submission_id: int, attempt: int, worker: str,
           values: dict[str, Any], tests: list[TestScore]) -> bool:
    """Store the result (row fields ``values`` and the per-test rows) in one transaction,
    only if the row is still ours, with the webhook deliveries it causes (a ``done`` or
    ``error`` row is final). False, with nothing written, when it is not ours."""
    result = db.execute(
        update(Submission).where(_mine(submission_id, attempt, worker))
        .values(lease_until=None, **values).execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        db.rollback()
        return False
    db.execute(delete(TestScore).where(TestScore.submission_id == submission_id))
    for test in tests:
        test.submission_id = submission_id
        db.add(test)
    if values.get("status") in ("done", "error"):
        record_completion(db, submission_id)
        mark_stale(db, submission_id)  # LTI grade passback (store.lti_scores)
    db.commit()
    return True


def seconds_until_expiry(db: Session, submission_id: int, now: datetime | None = None) -> float:
    """How long the current lease on the row still runs (0 when none or expired)."""
    until = db.scalar(select(Submission.lease_until).where(Submission.id == submission_id))
    db.rollback()
    if until is None:
        return 0.0
    return max(0.0, (until - (now or utcnow())).total_seconds())
