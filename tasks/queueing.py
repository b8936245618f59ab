"""Waking workers. The database is the truth; a published message only says "look at
submission N". Publishing happens after the ``queued`` row is committed, and a failure
to publish is not an error: the row stays queued and the reconciler publishes it later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import TYPE_CHECKING, Any, Protocol

from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy import select, update

from store.db import SessionFactory
from store.models import Assignment, Submission, utcnow
from tasks.settings import Settings

if TYPE_CHECKING:
    from tasks.embedded import EmbeddedWorker

log = logging.getLogger(__name__)

GRADE_TASK = "dlgrade.grade_submission"
RECONCILE_TASK = "dlgrade.reconcile"
WEBHOOKS_TASK = "dlgrade.deliver_webhooks"
BROKER_ERRORS = (KombuError, RedisError, OSError)
FAIL_FAST = {"max_retries": 0}


class Enqueuer(Protocol):
    def enqueue(self, submission_id: int, queue: str) -> bool:
        """Ask a worker of ``queue`` to grade ``submission_id``; False (after logging a
        warning) when the broker cannot be reached. Never raises for broker errors."""
        ...


class CeleryEnqueuer:
    """Publishes ``dlgrade.grade_submission(id)`` to the Celery queue named ``queue``,
    once: no retries (the reconciler is the retry) and a short connection timeout.

    It keeps one broker connection of its own (thread-safe, re-made after a fork or an
    error) with no connect retries: the app's default connection retries for seconds,
    and an upload must not wait for a broker that is down.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._connection: Any = None
        self._pid = 0

    def enqueue(self, submission_id: int, queue: str) -> bool:
        with self._lock:
            try:
                self._publish(submission_id, queue)
            except BROKER_ERRORS as exc:
                self._drop()
                log.warning("could not publish submission %s to %r (%s); the reconciler "
                            "will retry", submission_id, queue, exc)
                return False
        return True

    def _publish(self, submission_id: int, queue: str) -> None:
        reused = self._connection is not None and self._pid == os.getpid()
        try:
            self.app.send_task(GRADE_TASK, args=[submission_id], queue=queue, retry=False,
                               connection=self._connect())
        except BROKER_ERRORS:
            if not reused:
                raise
            self._drop()  # a connection that went stale (broker restarted): once more
            self.app.send_task(GRADE_TASK, args=[submission_id], queue=queue, retry=False,
                               connection=self._connect())

    def _connect(self) -> Any:
        if self._connection is None or self._pid != os.getpid():
            self._connection = self.app.connection_for_write(transport_options=FAIL_FAST)
            self._pid = os.getpid()
        return self._connection

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and self._pid == os.getpid():
            with contextlib.suppress(*BROKER_ERRORS):
                connection.release()


class EmbeddedEnqueuer:
    """Wakes the in-process worker (it finds the work in the table itself)."""

    def __init__(self, worker: EmbeddedWorker) -> None:
        self.worker = worker

    def enqueue(self, submission_id: int, queue: str) -> bool:
        self.worker.wake()
        return True


class PollingEnqueuer:
    """Embedded mode with no worker handle at hand: the embedded worker polls the table
    every few seconds, so there is nothing to publish."""

    def enqueue(self, submission_id: int, queue: str) -> bool:
        return True


def make_enqueuer(settings: Settings, worker: EmbeddedWorker | None = None) -> Enqueuer:
    """The embedded worker's enqueuer when one is given; Celery when a broker is
    configured; else the polling no-op (embedded mode)."""
    if worker is not None:
        return EmbeddedEnqueuer(worker)
    if settings.broker_url:
        from tasks.celery_app import make_celery  # Celery is only imported when used

        return CeleryEnqueuer(make_celery(settings))
    return PollingEnqueuer()


def submit(db_factory: SessionFactory, enqueuer: Enqueuer, submission_id: int) -> bool:
    """Publish a committed ``queued`` submission to its assignment's queue and record
    ``enqueued_at``. False when the row is not queued or the broker is down."""
    with db_factory() as db:
        queue = db.scalar(
            select(Assignment.queue)
            .join(Submission, Submission.assignment_id == Assignment.id)
            .where(Submission.id == submission_id, Submission.status == "queued")
        )
    if queue is None or not enqueuer.enqueue(submission_id, queue):
        return False
    mark_enqueued(db_factory, [submission_id])
    return True


def mark_enqueued(db_factory: SessionFactory, submission_ids: list[int]) -> None:
    if not submission_ids:
        return
    with db_factory() as db:
        db.execute(
            update(Submission).where(Submission.id.in_(submission_ids))
            .values(enqueued_at=utcnow()).execution_options(synchronize_session=False)
        )
        db.commit()
