"""The reconciler: the database says what still needs grading, whatever the broker lost.

It re-publishes rows that are ``queued`` but were never published (broker down at
upload) or were published long ago (message lost: Redis restarted without AOF), and
rows ``running`` whose lease expired (worker died). It does not change their status:
the claim decides who grades, so a re-published row that is graded meanwhile is a
no-op. Each row is published at most once per ``queued_stale_after`` seconds.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select

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
    for submission_id, queue in stranded(db_factory, settings, now, batch):
        if not enqueuer.enqueue(submission_id, queue):
            break
        published.append(submission_id)
    mark_enqueued(db_factory, published)
    if published:
        log.info("reconciler re-published %d submission(s)", len(published))
    return len(published)


def stranded(
    db_factory: SessionFactory, settings: Settings, now: datetime, batch: int
) -> list[tuple[int, str]]:
    """(id, queue) of rows that have waited too long for a message that works."""
    stale = now - timedelta(seconds=settings.queued_stale_after)
    not_recently_published = or_(Submission.enqueued_at.is_(None), Submission.enqueued_at < stale)
    waiting = and_(Submission.status == "queued", not_recently_published)
    abandoned = and_(
        Submission.status == "running", lease_expired(now),
        or_(not_recently_published, Submission.enqueued_at < Submission.lease_until),
    )
    with db_factory() as db:
        rows = db.execute(
            select(Submission.id, Assignment.queue)
            .join(Assignment, Submission.assignment_id == Assignment.id)
            .where(or_(waiting, abandoned))
            .order_by(Submission.created_at, Submission.id)
            .limit(batch)
        ).all()
    return [(int(submission_id), str(queue)) for submission_id, queue in rows]
