"""Grade passback's outbox: which score each LMS-linked student should have, and which
of those still need posting (:class:`store.lti_models.LtiScore`).

The score posted is the one dlgrade shows the student: the submission that counts (the
one they chose where the assignment allows it, else their best), counting only the
tests they may see now, with the late penalty and staff's adjustments applied
(:func:`shown_score` follows ``web.visibility.shown`` rule for rule; a test checks they
agree). Points withheld until submissions close are not posted, so the LMS gradebook
never reveals a hidden test early; once they are revealed the score changes and is
posted again. ``scoreMaximum`` is the assignment's full maximum.

:func:`mark_stale` runs in the transaction that stores a result (``store.leases``), so
a grading is never missed; a periodic full refresh (``tasks.lti_passback``) catches what
no grading signals (a due date passing, an extension). A row's ``version`` goes up only
when the score to post really changes, so an unchanged score is never posted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, or_, select, update
from sqlalchemy.orm import Session, selectinload

from grader.results import TestResult
from store.adjustments import chosen_submission
from store.lti_models import LtiContext, LtiResourceLink, LtiScore, LtiUser
from store.models import Assignment, Enrollment, Extension, Submission, utcnow
from store.scores import adjustments_of, stored_result, submission_score

ERROR_CHARS = 500


def rowcount(result: Any) -> int:
    # Not store.leases.rowcount: store.leases imports this module.
    return int(cast("CursorResult[Any]", result).rowcount)


@dataclass(frozen=True)
class Desired:
    submission_id: int
    score: float
    max_score: float
    comment: str


def submissions_close(assignment: Assignment, extensions: list[Extension]) -> datetime | None:
    """As ``web.visibility.submissions_close``: the last moment anyone may hand in."""
    own = assignment.late_due_at or assignment.due_at
    if own is None:
        return None
    closes = [own]
    for ext in extensions:
        late = ext.late_due_at
        if late is None and assignment.late_due_at is not None \
                and assignment.late_due_at > ext.due_at:
            late = assignment.late_due_at
        closes.append(late or ext.due_at)
    return max(closes)


def student_sees(visibility: str, assignment: Assignment, close: datetime | None,
                 now: datetime) -> bool:
    if visibility == "visible":
        return True
    closed = close is not None and now >= close
    if visibility == "after_due_date":
        return closed
    if visibility == "hidden":
        return closed and assignment.hidden_visible_after_due
    return False


def shown_score(submission: Submission, close: datetime | None, now: datetime
                ) -> tuple[float, float, float]:
    """(score shown to the student, full maximum, points withheld) of a graded row: the
    stored record's tests the student may see now, scored by :mod:`grader.scoring`
    through :mod:`store.scores` (the late penalty in force, then staff's adjustments)."""
    assignment = submission.assignment

    def visible(test: TestResult) -> bool:
        return student_sees(test.visibility, assignment, close, now)

    result = stored_result(submission)
    if result is None:  # no record: only the stored total, every test counted
        found = submission_score(submission)
        if found is None:
            return 0.0, float(submission.max_score or 0.0), 0.0
        return found.total, found.max_score, 0.0
    scored = result.total(visible, adjustments_of(submission))
    maximum = sum(t.max_score for t in result.tests) or float(submission.max_score or 0.0)
    withheld = sum(t.max_score for t in result.tests if not visible(t))
    return scored.total, maximum, withheld


def desired(db: Session, assignment: Assignment, user_id: int, now: datetime) -> Desired | None:
    """What the LMS should show for ``user_id``, or None while nothing is graded."""
    rows = db.scalars(select(Submission).where(
        Submission.assignment_id == assignment.id, Submission.user_id == user_id,
        Submission.status == "done").options(selectinload(Submission.adjustments))
        .order_by(Submission.created_at, Submission.id)).all()
    if not rows:
        return None
    extensions = list(db.scalars(select(Extension).where(
        Extension.assignment_id == assignment.id)))
    close = submissions_close(assignment, extensions)
    views = {row.id: (shown_score(row, close, now), row) for row in rows}
    # Which counts, as web.assignment_page.history says: the one the student chose
    # (where allowed), else the best (the earliest on a tie).
    chosen = chosen_submission(db, assignment, user_id)
    counted = chosen if chosen in views else max(views, key=lambda i: (views[i][0][0], -i))
    (score, maximum, withheld), best = views[counted]
    note = f"dlgrade submission {best.id}: {score:g} of {maximum:g} points"
    if withheld:
        note += f"; {withheld:g} more points are withheld until submissions close"
    return Desired(best.id, score, maximum, note + ".")


def mark_stale(db: Session, submission_id: int, now: datetime | None = None) -> int:
    """In the transaction storing ``submission_id``'s result: flag the student's score on
    every LMS link of its assignment for recomputing (rows made as needed). Returns how
    many links; students the LMS does not know through LTI have none."""
    found = db.execute(select(Submission.assignment_id, Submission.user_id)
                       .where(Submission.id == submission_id)).first()
    if found is None:
        return 0
    links = db.execute(
        select(LtiResourceLink.id).join(LtiUser, and_(
            LtiUser.platform_id == LtiResourceLink.platform_id,
            LtiUser.user_id == found.user_id))
        .where(LtiResourceLink.assignment_id == found.assignment_id)).scalars().all()
    for link_id in links:
        _flag(db, link_id, found.user_id, now or utcnow())
    db.flush()
    return len(links)


def _flag(db: Session, link_id: int, user_id: int, now: datetime) -> None:
    row = db.scalars(select(LtiScore).where(LtiScore.link_id == link_id,
                                            LtiScore.user_id == user_id)).first()
    if row is None:
        db.add(LtiScore(link_id=link_id, user_id=user_id, stale=True, status="pending",
                        changed_at=now, next_attempt_at=now))
    else:
        row.stale = True


def mark_user(db: Session, link: LtiResourceLink, user_id: int) -> None:
    """Flag one student's score on ``link`` (their launch: what they have is posted)."""
    if link.assignment_id is not None:
        _flag(db, link.id, user_id, utcnow())
        db.flush()


def flag_link(db: Session, link: LtiResourceLink, now: datetime | None = None) -> int:
    """Flag every LTI-known student of the link's course (a link just mapped, or the
    periodic refresh); returns how many."""
    if link.assignment_id is None:
        return 0
    course_id = db.scalar(select(LtiContext.course_id).where(LtiContext.id == link.context_row_id))
    users = db.scalars(
        select(Enrollment.user_id).join(LtiUser, and_(
            LtiUser.user_id == Enrollment.user_id, LtiUser.platform_id == link.platform_id))
        .where(Enrollment.course_id == course_id, Enrollment.role == "student")).all()
    for user_id in users:
        _flag(db, link.id, user_id, now or utcnow())
    db.flush()
    return len(users)


def refresh(db: Session, now: datetime | None = None, batch: int = 500) -> int:
    """Recompute up to ``batch`` stale rows; a changed score becomes a new version to
    post. Returns how many changed. Commits."""
    moment = now or utcnow()
    rows = db.scalars(select(LtiScore).where(LtiScore.stale.is_(True))
                      .options(selectinload(LtiScore.link)).limit(batch)).all()
    changed = 0
    for row in rows:
        row.stale = False
        assignment = row.link.assignment
        if assignment is None:
            continue
        want = desired(db, assignment, row.user_id, moment)
        if want is None or (want.score, want.max_score, want.comment) == (
                row.score, row.max_score, row.comment):
            continue
        row.submission_id, row.score, row.max_score = want.submission_id, want.score, \
            want.max_score
        row.comment, row.version, row.changed_at = want.comment, row.version + 1, moment
        row.status, row.attempts, row.next_attempt_at = "pending", 0, moment
        row.last_error = None
        changed += 1
    db.commit()
    return changed


def due(db: Session, now: datetime, batch: int = 50) -> list[int]:
    return list(db.scalars(select(LtiScore.id).where(
        LtiScore.status == "pending", LtiScore.version > LtiScore.posted_version,
        or_(LtiScore.next_attempt_at.is_(None), LtiScore.next_attempt_at <= now))
        .order_by(LtiScore.next_attempt_at, LtiScore.id).limit(batch)))


def claim(db: Session, score_id: int, now: datetime, lease_seconds: float) -> int | None:
    """Take one row for one post (conditional UPDATE: of two senders only one wins; one
    that dies mid-post leaves it to be retried after the lease). Returns the version to
    post, or None. Commits."""
    version = db.scalar(select(LtiScore.version).where(LtiScore.id == score_id))
    taken = db.execute(
        update(LtiScore).where(
            LtiScore.id == score_id, LtiScore.status == "pending",
            LtiScore.version == version,
            or_(LtiScore.next_attempt_at.is_(None), LtiScore.next_attempt_at <= now))
        .values(next_attempt_at=now + timedelta(seconds=lease_seconds),
                attempts=LtiScore.attempts + 1)
        .execution_options(synchronize_session=False))
    db.commit()
    return int(version) if version is not None and rowcount(taken) == 1 else None


def record(db: Session, score_id: int, version: int, posted: float | None, error: str | None,
           *, max_attempts: int, retry_after: float, now: datetime | None = None) -> None:
    """After one post of ``version``: on success it becomes ``posted_version`` (a newer
    version, written meanwhile, stays pending); on failure retry later or, past
    ``max_attempts``, ``failed`` with the error for staff. Commits."""
    moment = now or utcnow()
    row = db.get(LtiScore, score_id)
    if row is None:
        return
    if error is None:
        row.posted_version = max(row.posted_version, version)
        row.posted_score, row.posted_at, row.last_error = posted, moment, None
        newer = row.version > row.posted_version
        row.status = "pending" if newer else "posted"
        row.attempts = 0 if newer else row.attempts
        row.next_attempt_at = moment
    else:
        row.last_error = error[:ERROR_CHARS]
        if row.attempts >= max_attempts:
            row.status = "failed"
        else:
            row.next_attempt_at = moment + timedelta(seconds=retry_after)
    db.commit()


def retry_failed(db: Session, link_ids: list[int] | None = None) -> int:
    """Put failed rows back in the queue (the staff page's button). Flushes."""
    query = update(LtiScore).where(LtiScore.status == "failed")
    if link_ids is not None:
        query = query.where(LtiScore.link_id.in_(link_ids))
    done = db.execute(query.values(status="pending", attempts=0, next_attempt_at=utcnow())
                      .execution_options(synchronize_session=False))
    return rowcount(done)


@dataclass(frozen=True)
class LinkStatus:
    link: LtiResourceLink
    posted: int
    pending: int
    failed: list[LtiScore]


def link_status(db: Session, course_id: int) -> list[LinkStatus]:
    """Each LMS link of the course with its passback counts and its failed rows."""
    links = db.scalars(select(LtiResourceLink).join(LtiContext, LtiContext.id ==
                                                    LtiResourceLink.context_row_id)
                       .where(LtiContext.course_id == course_id)
                       .order_by(LtiResourceLink.id)).all()
    found: list[LinkStatus] = []
    for link in links:
        rows = db.scalars(select(LtiScore).where(LtiScore.link_id == link.id)
                          .options(selectinload(LtiScore.user))).all()
        counts: dict[str, Any] = {"posted": 0, "pending": 0}
        for row in rows:
            if row.status in counts and row.posted_version and row.status == "posted":
                counts["posted"] += 1
            elif row.status == "pending" and row.version > row.posted_version:
                counts["pending"] += 1
        found.append(LinkStatus(link, counts["posted"], counts["pending"],
                                [r for r in rows if r.status == "failed"]))
    return found
