"""The embedded worker of ``dlgrade serve``: one daemon thread in the web process that
grades queued submissions one at a time, oldest first, through the same
:class:`~tasks.jobs.GradingJob` (and so the same claim protocol) as Celery workers.
No broker: it wakes on :meth:`EmbeddedWorker.wake` or every ``poll_interval`` seconds.
Each pass also posts the webhook deliveries that are due (:mod:`tasks.webhooks`), and
a second thread beats (:mod:`tasks.heartbeat`) every ``settings.heartbeat_interval``
seconds with the submission being graded.

On start it recovers from a crash of an earlier process on this host: rows left
``running`` by an embedded worker whose process is gone have their lease expired, so
they are graded again at once (attempt + 1) instead of after the lease runs out.

It takes the fairest waiting submission next (:mod:`store.scheduling`: one turn per
student). When the host cannot grade (:class:`tasks.health.HostFault`) the row is given
back uncounted, the heartbeat says why, and the worker waits ``HOST_FAULT_PAUSE``
seconds before it tries again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from store import heartbeats, scheduling
from store.db import SessionFactory
from store.heartbeats import WorkerInfo
from store.models import QUEUES, Submission, utcnow
from tasks.health import HostFault
from tasks.heartbeat import Heartbeat
from tasks.jobs import GradingJob
from tasks.lti_passback import LtiPassback
from tasks.sandboxes import SandboxProvider
from tasks.settings import Settings
from tasks.webhooks import WebhookSender

log = logging.getLogger(__name__)

PREFIX = "embedded@"
HOST_FAULT_PAUSE = 30.0  # seconds before a host that could not grade tries again


class EmbeddedWorker:
    def __init__(
        self, settings: Settings, db_factory: SessionFactory, *, poll_interval: float = 3.0,
        job: GradingJob | None = None, webhooks: WebhookSender | None = None,
        sandboxes: SandboxProvider | None = None,
    ) -> None:
        self.name = f"{PREFIX}{socket.gethostname()}:{os.getpid()}"
        self.db_factory = db_factory
        self.poll_interval = poll_interval
        self.job = job or GradingJob(settings, db_factory, worker=self.name,
                                     sandboxes=sandboxes)
        self.webhooks = webhooks or WebhookSender.from_settings(settings, db_factory)
        self.lti = LtiPassback(db_factory, settings)  # LTI grade passback, roster syncs
        self.current: int | None = None  # the submission being graded, for the heartbeat
        self.heartbeat = Heartbeat(worker_info(self.name, settings), settings.heartbeat_interval,
                                   self._current, db_factory=db_factory)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Recover what a crashed predecessor left, then grade in a daemon thread."""
        if self._thread is not None:
            return
        recovered = self.recover()
        if recovered:
            log.warning("re-queued %d submission(s) left running by a previous process",
                        recovered)
        self._thread = threading.Thread(target=self._loop, name="dlgrade-embedded-worker",
                                        daemon=True)
        self._thread.start()
        self.heartbeat.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the grading in progress (if any) and join the thread."""
        self._stop.set()
        self._wake.set()
        self.heartbeat.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.job.close()

    def recover(self) -> int:
        """Expire the leases of rows held by dead embedded workers of this host."""
        host = f"{PREFIX}{socket.gethostname()}:"
        with self.db_factory() as db:
            held = db.execute(
                select(Submission.id, Submission.worker)
                .where(Submission.status == "running", Submission.worker.startswith(host))
            ).all()
            dead = [row.id for row in held if row.worker != self.name and not _alive(row.worker)]
            if dead:
                db.execute(
                    update(Submission).where(Submission.id.in_(dead))
                    .values(lease_until=utcnow()).execution_options(synchronize_session=False)
                )
                db.commit()
        return len(dead)

    def run_pending(self) -> int:
        """Grade everything claimable now, one at a time; returns how many were run."""
        count = 0
        while not self._stop.is_set():
            submission_id = self._next()
            if submission_id is None:
                return count
            self.current = submission_id
            try:
                outcome = self.job.run(submission_id)
            finally:
                self.current = None
            count += 1
            if outcome == "waiting":  # no GPU free: the row stays queued for a later pass
                return count
        return count

    def _current(self, _: SessionFactory) -> int | None:
        return self.current

    def _next(self) -> int | None:
        with self.db_factory() as db:
            return scheduling.next_up(db, None, utcnow())

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_pending()
            except HostFault as fault:
                log.error("embedded worker: this host cannot grade (%s); trying again in "
                          "%g s", fault.reason, HOST_FAULT_PAUSE)
                self._health(fault.reason)
                self._stop.wait(HOST_FAULT_PAUSE)
                self._health("")
                continue
            except Exception:  # noqa: BLE001 - the thread must outlive a failed attempt
                # The job has already expired its lease (or the database is down): the
                # next pass claims the row again as attempt + 1, up to the attempt cap.
                log.exception("embedded worker: a grading failed; retrying shortly")
                self._stop.wait(1.0)
                continue
            self.deliver_webhooks()
            self._wake.wait(self.poll_interval)

    def _health(self, problem: str) -> None:
        try:
            with self.db_factory() as db:
                if problem:
                    heartbeats.report_unhealthy(db, self.name, problem, utcnow())
                else:
                    heartbeats.clear_health(db, self.name)
        except SQLAlchemyError:
            log.warning("embedded worker: could not record its health", exc_info=True)

    def deliver_webhooks(self) -> int:
        """Post the due webhook deliveries and LTI scores; a failure here never stops
        grading."""
        try:
            self.lti.run_pending()
        except Exception:  # noqa: BLE001 - e.g. the database is busy: next pass
            log.exception("embedded worker: LTI passback failed; retrying next pass")
        try:
            return self.webhooks.run_pending()
        except Exception:  # noqa: BLE001 - e.g. the database is busy: next pass
            log.exception("embedded worker: sending webhooks failed; retrying next pass")
            return 0


def worker_info(name: str, settings: Settings) -> WorkerInfo:
    """The embedded worker takes every queue; its sandbox is built lazily, so the
    heartbeat names the configured one."""
    return WorkerInfo(worker=name, queues=",".join(QUEUES), sandbox=f"{settings.sandbox} sandbox",
                      gpus=",".join(settings.gpu_ids), host=socket.gethostname(),
                      pid=os.getpid(), started_at=utcnow())


def _alive(worker: str | None) -> bool:
    """Whether the process named in ``embedded@host:pid`` still runs on this host."""
    try:
        pid = int((worker or "").rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
