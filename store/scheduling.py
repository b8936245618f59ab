"""Fair queueing: which pending submission a free grader takes next (issue 12, item 8).

A queue (cpu, gpu) is served in *turns*, one per student: a student's pending work —
what is being graded now, then what waits, oldest first — is numbered 1, 2, 3, ... and
the waiting submission with the lowest turn goes next (the oldest upload first among
equal turns). So three uploads of one student are graded one a turn, between everyone
else's, and a student whose submission is being graded waits behind those who have
nothing running: a student's pending work counts against their own share, never
against anyone else's.

Messages on the broker only wake a worker; the worker then grades :func:`next_up` of its
queue (:class:`tasks.jobs.GradingJob`), so the broker's first-in, first-out order does
not decide. :func:`place` is the same order seen from one submission (its position in
the queue, and what is ahead of it, for the wait a student is told).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Subquery, and_, case, func, or_, select
from sqlalchemy.orm import Session

from store.leases import lease_expired
from store.models import Assignment, Submission

PENDING = ("queued", "running")


def _live(now: datetime) -> ColumnElement[bool]:
    """Being graded now: running under a lease that has not expired."""
    return and_(Submission.status == "running", ~lease_expired(now))


def turns(queues: Sequence[str] | None, now: datetime) -> Subquery:
    """Every pending submission of ``queues`` (None: all) with its student's turn."""
    live = _live(now)
    query = (
        select(
            Submission.id, Submission.user_id, Submission.assignment_id,
            Submission.created_at, Submission.started_at,
            case((live, 1), else_=0).label("live"),
            func.row_number().over(
                partition_by=Submission.user_id,
                order_by=(case((live, 0), else_=1), Submission.created_at, Submission.id),
            ).label("turn"),
        )
        .join(Assignment, Submission.assignment_id == Assignment.id)
        .where(Submission.status.in_(PENDING))
    )
    if queues is not None:
        query = query.where(Assignment.queue.in_(list(queues)))
    return query.subquery("turns")


def next_up(db: Session, queues: Sequence[str] | None, now: datetime,
            exclude: Sequence[int] = ()) -> int | None:
    """The claimable submission of ``queues`` to grade next (None when none waits)."""
    order = turns(queues, now)
    query = select(order.c.id).where(order.c.live == 0)
    if exclude:
        query = query.where(order.c.id.not_in(list(exclude)))
    return db.scalar(query.order_by(order.c.turn, order.c.created_at, order.c.id).limit(1))


def queue_of(db: Session, submission_id: int) -> str | None:
    return db.scalar(select(Assignment.queue).join(Submission)
                     .where(Submission.id == submission_id))


@dataclass(frozen=True)
class Ahead:
    """One pending submission graded before (or at the same time as) another."""

    assignment_id: int
    started_at: datetime | None  # set when it is being graded now


@dataclass(frozen=True)
class Place:
    """Where a pending submission stands in its queue."""

    position: int  # 1-based: how many are graded before it finishes, itself included
    ahead: list[Ahead]  # those being graded now and those that go before it, and itself


def place(db: Session, submission: Submission, now: datetime) -> Place | None:
    """The submission's place in its queue's fair order (what is being graded first, then
    the waiting ones by turn); None once it has finished."""
    if submission.status not in PENDING:
        return None
    queue = queue_of(db, submission.id)
    if queue is None:
        return None
    order = turns([queue], now)
    mine = db.execute(select(order.c.live, order.c.turn, order.c.created_at)
                      .where(order.c.id == submission.id)).first()
    if mine is None:
        return None
    same_turn_earlier = and_(order.c.turn == mine.turn, or_(
        order.c.created_at < mine.created_at,
        and_(order.c.created_at == mine.created_at, order.c.id <= submission.id)))
    earlier = or_(order.c.turn < mine.turn, same_turn_earlier)
    before = and_(order.c.live == 1, earlier) if mine.live else or_(order.c.live == 1, and_(
        order.c.live == 0, earlier))
    rows = db.execute(select(order.c.assignment_id, order.c.started_at, order.c.live)
                      .where(before)).all()
    ahead = [Ahead(int(r.assignment_id), r.started_at if r.live else None) for r in rows]
    return Place(len(ahead), ahead)
