"""Fair queueing: which pending submission a free grader takes next (issue 12, item 8).

Each queue (cpu, gpu) is served in order of *fair start times*, one student at a time,
as in start-time fair queueing: a student's submissions, taken in the order they were
uploaded, each start no earlier than the upload itself and no earlier than the moment
the student's previous one would have finished had it started at its own fair time. So
a student's work counts against their own rate only: what one student's gradings cost
(the time they really took, for those finished in the last :data:`WINDOW`; the time so
far, at least the usual, for one being graded; the queue's usual time for one waiting)
pushes their own next submission back, never anyone else's. Three uploads of a handin
whose every call sleeps near its limit take turns with everyone else's instead of
holding the only grader for half an hour.

Messages on the broker only wake a worker; the worker then grades :func:`next_up` of its
queue (:class:`tasks.jobs.GradingJob`), so the broker's first-in, first-out order does
not decide. :func:`place` is the same order seen from one submission (its position, and
what goes before it, for the wait a student is told).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from store.models import Assignment, Submission

PENDING = ("queued", "running")
WINDOW = timedelta(hours=1)  # finished gradings that still count against their student
USUAL_S = 30.0  # a grading's cost before any has finished in the queue
HISTORY = 5000  # finished gradings read, at most


@dataclass(frozen=True)
class Pending:
    id: int
    user_id: int
    assignment_id: int
    created_at: datetime
    started_at: datetime | None
    live: bool  # being graded now (running under a lease that has not expired)
    fair_start: datetime


@dataclass(frozen=True)
class Order:
    """A queue's pending submissions: those being graded, then the waiting ones (queued,
    or running under an expired lease) by fair start time."""

    live: list[Pending]
    waiting: list[Pending]
    usual_s: float

    def position(self, submission_id: int) -> int | None:
        for index, item in enumerate(self.live):
            if item.id == submission_id:
                return index + 1
        for index, item in enumerate(self.waiting):
            if item.id == submission_id:
                return len(self.live) + index + 1
        return None


def order(db: Session, queues: Sequence[str] | None, now: datetime) -> Order:
    """The fair order of ``queues`` (None: all of them) at ``now``."""
    pending = db.execute(select(
        Submission.id, Submission.user_id, Submission.assignment_id, Submission.status,
        Submission.created_at, Submission.started_at, Submission.lease_until,
    ).join(Assignment, Submission.assignment_id == Assignment.id)
        .where(Submission.status.in_(PENDING), *_in_queues(queues))).all()
    finished = db.execute(select(
        Submission.user_id, Submission.started_at, Submission.finished_at,
    ).join(Assignment, Submission.assignment_id == Assignment.id)
        .where(Submission.status.in_(("done", "error")), Submission.finished_at >= now - WINDOW,
               Submission.started_at.is_not(None), *_in_queues(queues))
        .order_by(Submission.finished_at.desc()).limit(HISTORY)).all()
    took = [(r.finished_at - r.started_at).total_seconds() for r in finished]
    usual = statistics.median(took) if took else USUAL_S
    users = {row.user_id for row in pending}
    history: dict[int, list[tuple[datetime, float]]] = defaultdict(list)
    for done, seconds in zip(finished, took, strict=True):
        if done.user_id in users:  # when it really started, and what it took
            history[done.user_id].append((done.started_at, max(seconds, 0.0)))
    rows: dict[int, list[Any]] = defaultdict(list)
    for row in pending:
        rows[row.user_id].append(row)
    items = [item for user, own in rows.items()
             for item in _fair_starts(history[user], own, usual, now)]
    live_items = sorted((i for i in items if i.live),
                        key=lambda i: (i.started_at or now, i.id))
    waiting = sorted((i for i in items if not i.live),
                     key=lambda i: (i.fair_start, i.created_at, i.id))
    return Order(live_items, waiting, usual)


def _fair_starts(history: list[tuple[datetime, float]], own: list[Any], usual: float,
                 now: datetime) -> list[Pending]:
    """The student's pending submissions with their fair start times, after what their
    finished ones (in upload order) cost."""
    free: datetime | None = None  # when the student's previous work fairly finished
    for started_at, seconds in sorted(history):
        start = started_at if free is None else max(started_at, free)
        free = start + timedelta(seconds=seconds)
    found = []
    for row in sorted(own, key=lambda r: (r.created_at, r.id)):
        live = row.status == "running" and row.lease_until is not None and row.lease_until > now
        cost = usual if not live or row.started_at is None else max(
            usual, (now - row.started_at).total_seconds())
        start = row.created_at if free is None else max(row.created_at, free)
        free = start + timedelta(seconds=cost)
        found.append(Pending(int(row.id), int(row.user_id), int(row.assignment_id),
                             row.created_at, row.started_at, live, start))
    return found


def _in_queues(queues: Sequence[str] | None) -> list[ColumnElement[bool]]:
    return [] if queues is None else [Assignment.queue.in_(list(queues))]


def next_up(db: Session, queues: Sequence[str] | None, now: datetime,
            exclude: Sequence[int] = ()) -> int | None:
    """The claimable submission of ``queues`` to grade next (None when none waits)."""
    skip = set(exclude)
    return next((item.id for item in order(db, queues, now).waiting if item.id not in skip),
                None)


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
    ahead: list[Ahead]  # those being graded now, those that go before it, and itself


class OrderCache:
    """:func:`order` per queue, reused for ``ttl`` seconds: every waiting student's page
    asks for its place every few seconds, and the order changes only as gradings start."""

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._orders: dict[tuple[str, str], tuple[float, Order]] = {}

    def get(self, db: Session, queue: str, now: datetime) -> Order:
        key = (str(db.get_bind().engine.url), queue)
        with self._lock:
            cached = self._orders.get(key)
            if cached is not None and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
        found = order(db, [queue], now)
        with self._lock:
            self._orders[key] = (time.monotonic(), found)
        return found


def place(db: Session, submission: Submission, now: datetime,
          cache: OrderCache | None = None) -> Place | None:
    """The submission's place in its queue's fair order; None once it has finished."""
    if submission.status not in PENDING:
        return None
    queue = queue_of(db, submission.id)
    if queue is None:
        return None
    found = cache.get(db, queue, now) if cache is not None else order(db, [queue], now)
    position = found.position(submission.id)
    if position is None:  # newer than a cached order: it waits behind all of it
        items = [*found.live, *found.waiting]
        return Place(len(items) + 1, [*_ahead(items), Ahead(submission.assignment_id, None)])
    items = [*found.live, *found.waiting][:position]
    return Place(position, _ahead(items))


def _ahead(items: list[Pending]) -> list[Ahead]:
    return [Ahead(item.assignment_id, item.started_at if item.live else None) for item in items]
