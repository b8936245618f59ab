"""The reconciler: the database says what still needs grading, whatever the broker lost.

It re-publishes rows ``running`` whose lease expired (their worker died), and rows
``queued`` that were never published (the broker was down at upload) or were published
long ago and may have lost their message (Redis restarted without AOF). It does not
change their status: the claim decides who grades, so a re-published row that is graded
meanwhile is a no-op. Each row is published at most once per ``queued_stale_after``
seconds.

Only what is stale (issue 18): a message wakes a worker for whichever queued row of its
queue is fairest next (:mod:`store.scheduling`), so messages are interchangeable. When
the broker can say how many messages wait in a queue, queued rows are published only
for the shortfall (queued rows minus waiting messages): during a long drain, whose
messages all still wait, nothing is published again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select

from store.db import SessionFactory
from store.leases import lease_expired
from store.models import Assignment, Submission, utcnow
from tasks.queueing import Enqueuer, mark_enqueued
from tasks.settings import Settings

log = logging.getLogger(__name__)

BATCH = 200


def reconcile(
    db_factory: SessionFactory, enqueuer: Enqueuer, settings: Settings,
    now: datetime | None = None, batch: int = BATCH,
) -> int:
    """Re-publish up to ``batch`` stranded submissions, oldest first; returns how many.
    Stops at the first publish that fails (the broker is down: next time)."""
    now = now or utcnow()
    published: list[int] = []
    for submission_id, queue in stranded(db_factory, settings, now, batch, enqueuer):
        if not enqueuer.enqueue(submission_id, queue):
            break
        published.append(submission_id)
    mark_enqueued(db_factory, published)
    if published:
        log.info("reconciler re-published %d submission(s)", len(published))
    return len(published)


def stranded(
    db_factory: SessionFactory, settings: Settings, now: datetime, batch: int,
    enqueuer: Enqueuer | None = None,
) -> list[tuple[int, str]]:
    """(id, queue) of rows that have waited too long for a message that works: every
    abandoned one, and the stale queued ones up to each queue's shortfall of messages
    (all of them when ``enqueuer`` cannot count its messages)."""
    stale = now - timedelta(seconds=settings.queued_stale_after)
    not_recently_published = or_(Submission.enqueued_at.is_(None), Submission.enqueued_at < stale)
    waiting = and_(Submission.status == "queued", not_recently_published)
    abandoned = and_(
        Submission.status == "running", lease_expired(now),
        or_(not_recently_published, Submission.enqueued_at < Submission.lease_until),
    )
    with db_factory() as db:
        rows = db.execute(
            select(Submission.id, Assignment.queue, Submission.status)
            .join(Assignment, Submission.assignment_id == Assignment.id)
            .where(or_(waiting, abandoned))
            .order_by(Submission.created_at, Submission.id)
            .limit(batch)
        ).all()
        queued = dict(db.execute(
            select(Assignment.queue, func.count(Submission.id))
            .join(Assignment, Submission.assignment_id == Assignment.id)
            .where(Submission.status == "queued").group_by(Assignment.queue)).all())
    shortfall = {queue: _shortfall(enqueuer, queue, int(count))
                 for queue, count in queued.items()}
    return list(_within(rows, shortfall))


def _shortfall(enqueuer: Enqueuer | None, queue: str, queued: int) -> int | None:
    """Queued rows of ``queue`` that no waiting message will reach (None: unknown)."""
    ready = getattr(enqueuer, "ready", None)
    waiting = ready(queue) if callable(ready) else None
    return None if waiting is None else max(0, queued - int(waiting))


def _within(rows: Iterable[tuple[int, str, str]], shortfall: dict[str, int | None]
            ) -> Iterable[tuple[int, str]]:
    left = dict(shortfall)
    for submission_id, queue, status in rows:
        if status == "queued":
            budget = left.get(queue)
            if budget is not None:
                if budget <= 0:
                    continue
                left[queue] = budget - 1
        yield int(submission_id), str(queue)
