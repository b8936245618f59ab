"""Named read queries over submissions, shared by the web (pages, API) and the tasks.

Every function takes the session first and returns plain values or model objects;
times are UTC-aware datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session, joinedload

from store import scheduling
from store.models import Assignment, Enrollment, Submission, User, utcnow
from store.scores import total
from store.web_models import ActiveChoice

PENDING = ("queued", "running")


def queue_position(db: Session, submission: Submission, now: datetime | None = None
                   ) -> int | None:
    """1-based place of ``submission`` among the queued and running rows of its queue
    (cpu or gpu: each has its own workers), in the order they are graded (what is being
    graded first, then one turn per student, oldest first: :mod:`store.scheduling`);
    None once it has finished."""
    found = scheduling.place(db, submission, now or utcnow())
    return None if found is None else found.position


def queue_depth(db: Session, queue: str) -> int:
    """Submissions queued or running in ``queue`` (cpu or gpu)."""
    return int(db.scalar(select(func.count(Submission.id)).join(Assignment).where(
        Submission.status.in_(PENDING), Assignment.queue == queue)) or 0)


@dataclass(frozen=True)
class Finished:
    """When one recent grading started (its claim) and finished (its result stored)."""

    started_at: datetime
    finished_at: datetime


def recent_gradings(db: Session, queue: str, recent: int = 50,
                    assignment_id: int | None = None) -> list[Finished]:
    """The last ``recent`` finished gradings in ``queue`` (of one assignment, when given),
    most recent first."""
    query = (select(Submission.started_at, Submission.finished_at).join(Assignment)
             .where(Assignment.queue == queue, Submission.status == "done",
                    Submission.started_at.is_not(None), Submission.finished_at.is_not(None)))
    if assignment_id is not None:
        query = query.where(Submission.assignment_id == assignment_id)
    rows = db.execute(query.order_by(Submission.finished_at.desc(), Submission.id.desc())
                      .limit(recent)).all()
    return [Finished(started, finished) for started, finished in rows
            if started is not None and finished is not None]


def start_of_day(now: datetime) -> datetime:
    """Midnight (in ``now``'s time zone, UTC for the service) starting ``now``'s day."""
    return datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)


def submissions_today(db: Session, user_id: int, assignment_id: int, now: datetime) -> int:
    """How many submissions ``user_id`` made to ``assignment_id`` since midnight of ``now``."""
    count = db.scalar(
        select(func.count(Submission.id)).where(
            Submission.user_id == user_id,
            Submission.assignment_id == assignment_id,
            Submission.created_at >= start_of_day(now),
        )
    )
    return int(count or 0)


def best_scores(db: Session, user_id: int) -> dict[int, float]:
    """assignment_id -> the best score (staff view, store.scores) among ``user_id``'s
    graded submissions."""
    found: dict[int, float] = {}
    for submission in db.scalars(select(Submission).where(
            Submission.user_id == user_id, Submission.status == "done")):
        value = total(submission)
        if value is not None:
            found[submission.assignment_id] = max(value, found.get(submission.assignment_id,
                                                                    value))
    return found


def _newest_first(query: Select[Submission]) -> Select[Submission]:
    return query.order_by(Submission.created_at.desc(), Submission.id.desc())


def assignment_submissions(db: Session, assignment_id: int) -> Sequence[Submission]:
    """Every submission to an assignment, newest first, with its user loaded."""
    query = select(Submission).where(Submission.assignment_id == assignment_id)
    return db.scalars(_newest_first(query).options(joinedload(Submission.user))).all()


def user_submissions(
    db: Session, user_id: int, assignment_id: int | None = None
) -> Sequence[Submission]:
    """A user's submissions (to one assignment, or all), newest first, with assignments."""
    query = select(Submission).where(Submission.user_id == user_id)
    if assignment_id is not None:
        query = query.where(Submission.assignment_id == assignment_id)
    return db.scalars(_newest_first(query).options(joinedload(Submission.assignment))).all()


def latest_submissions(
    db: Session, assignment_id: int | None = None, limit: int = 50
) -> Sequence[Submission]:
    """The most recent submissions (of one assignment, or all), with users and assignments."""
    query = select(Submission)
    if assignment_id is not None:
        query = query.where(Submission.assignment_id == assignment_id)
    options = (joinedload(Submission.user), joinedload(Submission.assignment))
    return db.scalars(_newest_first(query).options(*options).limit(limit)).all()


def queue_stats(db: Session, now: datetime | None = None,
                *scope: ColumnElement[bool]) -> dict[str, int]:
    """Queue depth for the dashboard: queued, running, and done / error in the last hour,
    over every submission or those matching ``scope`` (e.g. one assignment's)."""
    now = now or utcnow()
    pending = _count_by_status(db, Submission.status.in_(PENDING), *scope)
    finished = _count_by_status(db, Submission.status.in_(("done", "error")),
                                Submission.finished_at >= now - timedelta(hours=1), *scope)
    return {
        "queued": pending.get("queued", 0),
        "running": pending.get("running", 0),
        "done_last_hour": finished.get("done", 0),
        "error_last_hour": finished.get("error", 0),
    }


def _count_by_status(db: Session, *conditions: ColumnElement[bool]) -> dict[str, int]:
    rows = db.execute(
        select(Submission.status, func.count(Submission.id))
        .where(*conditions).group_by(Submission.status)
    ).all()
    return {str(status): int(count) for status, count in rows}


@dataclass(frozen=True)
class GradebookRow:
    """One student's standing on one assignment (scores of the staff view, every test
    counted, from store.scores: the late penalty in force and the adjustments applied)."""

    user_id: int
    email: str
    name: str
    attempts: int
    latest_id: int | None
    latest_status: str | None
    latest_score: float | None
    latest_at: datetime | None
    best_id: int | None
    best_score: float | None
    max_score: float | None
    best_late_days: int


def gradebook(db: Session, assignment_id: int) -> list[GradebookRow]:
    """Every student enrolled in the assignment's course, and anyone else who submitted
    to it, ordered by e-mail. The best submission is the highest score (store.scores) among the
    graded ones (the earliest on a tie); the latest is the newest upload of any status."""
    assignment = db.get(Assignment, assignment_id)
    if assignment is None:
        return []
    submissions = db.scalars(
        select(Submission).where(Submission.assignment_id == assignment_id)
        .order_by(Submission.created_at, Submission.id)
    ).all()
    by_user: dict[int, list[Submission]] = {}
    for submission in submissions:
        by_user.setdefault(submission.user_id, []).append(submission)
    enrolled = select(Enrollment.user_id).where(
        Enrollment.course_id == assignment.course_id, Enrollment.role == "student"
    )
    users = db.scalars(
        select(User).where(User.id.in_(enrolled) | User.id.in_(list(by_user)))
        .order_by(User.email)
    ).all()
    choices = dict(db.execute(select(ActiveChoice.user_id, ActiveChoice.submission_id).where(
        ActiveChoice.assignment_id == assignment_id)).all()) if assignment.students_choose else {}
    return [_gradebook_row(user, by_user.get(user.id, []), choices.get(user.id))
            for user in users]


def _gradebook_row(user: User, submissions: list[Submission],
                   chosen: int | None = None) -> GradebookRow:
    """The best is the submission that counts: the one the student chose (where the
    assignment allows it), else the highest score with staff adjustments applied."""
    latest = submissions[-1] if submissions else None
    totals = {s.id: total(s) for s in submissions if s.status == "done"}
    graded = [s for s in submissions if totals.get(s.id) is not None]
    best = next((s for s in graded if s.id == chosen), None) or max(
        graded, key=lambda s: (totals[s.id] or 0.0, -s.id), default=None)
    return GradebookRow(
        user_id=user.id, email=user.email, name=user.name, attempts=len(submissions),
        latest_id=latest.id if latest else None,
        latest_status=latest.status if latest else None,
        latest_score=totals.get(latest.id) if latest else None,
        latest_at=latest.created_at if latest else None,
        best_id=best.id if best else None,
        best_score=totals[best.id] if best else None,
        max_score=best.max_score if best else None,
        best_late_days=best.late_days if best else 0,
    )
