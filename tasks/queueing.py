"""Waking workers. The database is the truth; a published message only says "look at
submission N" (and a worker grades whichever queued submission of that queue is fairest
next, see :mod:`store.scheduling`). Publishing happens after the ``queued`` row is
committed, and a failure to publish is not an error: the row stays queued and the
reconciler publishes it later.

A broker that hangs must not hang the upload (issue 18): every publish has a socket
timeout (:data:`tasks.broker.PUBLISH_TIMEOUT`), a publish that failed slowly keeps the
enqueuer from trying again for :data:`PAUSE_AFTER_TIMEOUT` seconds (the rows it skips are
the reconciler's), and the web publishes from a thread of its own
(:class:`BackgroundSubmitter`), so an upload answers 202 as soon as its row is committed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as queues
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from kombu.exceptions import ChannelError, KombuError
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from store.db import SessionFactory
from store.models import Assignment, Submission, utcnow
from tasks.broker import GRADE_TASK, PUBLISH_TIMEOUT, RECONCILE_TASK, WEBHOOKS_TASK, sender_app
from tasks.settings import Settings

if TYPE_CHECKING:
    from tasks.embedded import EmbeddedWorker

log = logging.getLogger(__name__)

__all__ = ["GRADE_TASK", "RECONCILE_TASK", "WEBHOOKS_TASK", "BackgroundSubmitter",
           "CeleryEnqueuer", "EmbeddedEnqueuer", "Enqueuer", "PollingEnqueuer",
           "make_enqueuer", "mark_enqueued", "submit"]

BROKER_ERRORS = (KombuError, RedisError, OSError)
PUBLISH_OPTIONS = {"max_retries": 0, "socket_timeout": PUBLISH_TIMEOUT}
PAUSE_AFTER_TIMEOUT = 10.0  # seconds without publishing after a publish that timed out
BACKLOG = 1000  # submissions waiting for the background publisher; beyond: the reconciler's


class Enqueuer(Protocol):
    def enqueue(self, submission_id: int, queue: str) -> bool:
        """Ask a worker of ``queue`` to grade ``submission_id``; False (after logging a
        warning) when the broker cannot be reached. Never raises for broker errors."""
        ...


class CeleryEnqueuer:
    """Publishes ``dlgrade.grade_submission(id)`` to the Celery queue named ``queue``,
    once: no retries (the reconciler is the retry), short connect and socket timeouts.

    It keeps one broker connection of its own (thread-safe, re-made after a fork or an
    error) with no connect retries: the app's default connection retries for seconds,
    and an upload must not wait for a broker that is down. A publish that fails slowly
    (the broker hangs rather than refuses) pauses publishing for ``pause`` seconds, so a
    burst of uploads does not queue up behind one hung socket after another.
    """

    may_block = True  # a broker call: the web runs it in the background

    def __init__(self, app: Any, *, pause: float = PAUSE_AFTER_TIMEOUT) -> None:
        self.app = app
        self.pause = pause
        self._lock = threading.Lock()
        self._connection: Any = None
        self._pid = 0
        self._paused_until = 0.0

    def enqueue(self, submission_id: int, queue: str) -> bool:
        with self._lock:
            if time.monotonic() < self._paused_until:
                log.warning("not publishing submission %s: the broker timed out lately; the "
                            "reconciler will publish it", submission_id)
                return False
            started = time.monotonic()
            try:
                self._publish(submission_id, queue)
            except BROKER_ERRORS as exc:
                self._drop()
                if time.monotonic() - started >= PUBLISH_TIMEOUT * 0.8:
                    self._paused_until = time.monotonic() + self.pause
                log.warning("could not publish submission %s to %r (%s); the reconciler "
                            "will retry", submission_id, queue, exc)
                return False
        return True

    def ready(self, queue: str) -> int | None:
        """Messages waiting in ``queue`` on the broker (None when it cannot tell)."""
        with self._lock:
            if time.monotonic() < self._paused_until:
                return None
            try:
                channel = self._connect().default_channel
                return int(channel.queue_declare(queue=queue, passive=True).message_count)
            except ChannelError:  # no such queue: no message waits in it
                return 0
            except BROKER_ERRORS:
                self._drop()
                return None

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
            self._connection = self.app.connection_for_write(transport_options=PUBLISH_OPTIONS)
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
    """The embedded worker's enqueuer when one is given; Celery (a send-only app) when a
    broker is configured; else the polling no-op (embedded mode)."""
    if worker is not None:
        return EmbeddedEnqueuer(worker)
    if settings.broker_url:
        return CeleryEnqueuer(sender_app(settings))
    return PollingEnqueuer()


def submit(db_factory: SessionFactory, enqueuer: Enqueuer, submission_id: int) -> bool:
    """Publish a committed ``queued`` submission to its assignment's queue and record
    ``enqueued_at``. False when the row is not queued, the broker is down or the
    database cannot be read (the row stays unpublished: the reconciler's)."""
    try:
        with db_factory() as db:
            queue = db.scalar(
                select(Assignment.queue)
                .join(Submission, Submission.assignment_id == Assignment.id)
                .where(Submission.id == submission_id, Submission.status == "queued")
            )
    except SQLAlchemyError as exc:
        log.warning("could not read submission %s to publish it (%s); the reconciler will",
                    submission_id, exc)
        return False
    if queue is None or not enqueuer.enqueue(submission_id, queue):
        return False
    try:
        mark_enqueued(db_factory, [submission_id])
    except SQLAlchemyError as exc:  # published all the same; a second message is a no-op
        log.warning("submission %s was published but not marked (%s)", submission_id, exc)
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


class BackgroundSubmitter:
    """:func:`submit` from a daemon thread of the process (made again after a fork), so
    that the request which committed the row does not wait for the broker. What is still
    waiting here when the process dies was never marked published: the reconciler
    publishes it, as it does when the backlog is full."""

    def __init__(self, db_factory: SessionFactory, enqueuer: Enqueuer,
                 backlog: int = BACKLOG) -> None:
        self.db_factory, self.enqueuer = db_factory, enqueuer
        self.backlog = backlog
        self._lock = threading.Lock()
        self._pid = 0
        self._queue: queues.Queue[int] = queues.Queue(backlog)

    def submit(self, submission_id: int) -> bool:
        """Hand ``submission_id`` to the publishing thread; False when it is full."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(submission_id)
        except queues.Full:
            log.warning("publishing backlog full; submission %s is left to the reconciler",
                        submission_id)
            return False
        return True

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed over has been tried (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._queue = queues.Queue(self.backlog)  # a forked child's copy is not ours
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="dlgrade-publisher", daemon=True).start()

    def _run(self) -> None:
        work = self._queue
        while True:
            submission_id = work.get()
            try:
                submit(self.db_factory, self.enqueuer, submission_id)
            except Exception:  # noqa: BLE001 - the thread must outlive one bad publish
                log.exception("publishing submission %s failed", submission_id)
            finally:
                work.task_done()
