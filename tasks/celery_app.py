"""The workers' Celery application, built from :class:`Settings` (no import-time state).

Its configuration is :func:`tasks.broker.celery_config` (docs/security.md §4.2): late
acks and reject-on-worker-lost (a killed worker's message is delivered again), prefetch
1, time limits below the Redis visibility timeout, socket timeouts on every broker call,
no result backend (the database is the truth). The tasks are thin
shells: ``dlgrade.grade_submission(id)`` runs :class:`tasks.jobs.GradingJob`, and
``dlgrade.reconcile()`` runs :func:`tasks.reconcile.reconcile`, and
``dlgrade.deliver_webhooks()`` runs :class:`tasks.webhooks.WebhookSender` (every worker
host also runs both periodically, see ``tasks.worker_main``; a ``celery beat`` can use
the ``beat_schedule`` entry instead).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown, worker_shutdown
from kombu.exceptions import KombuError
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from store import heartbeats, leases
from store.db import SessionFactory, make_engine, make_session_factory
from store.models import utcnow
from tasks.broker import GRADE_TASK, RECONCILE_TASK, WEBHOOKS_TASK, celery_config
from tasks.health import HostFault
from tasks.jobs import GradingJob
from tasks.queueing import CeleryEnqueuer
from tasks.reconcile import reconcile
from tasks.sandboxes import SandboxProvider
from tasks.scratch import enter_process_scratch, leave_process_scratch
from tasks.settings import Settings
from tasks.webhooks import WebhookSender

log = logging.getLogger(__name__)

FAILURE_RETRIES = 5  # retries after an exception (database down, ...) before giving up
GPU_RETRY_SECONDS = 5  # after a GPU wait that timed out (the wait itself was long)
HANDED_ON_SECONDS = 1  # a job an unhealthy worker hands on waits this long for another


def make_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings.broker_url`` with the dlgrade tasks registered."""
    app = Celery("dlgrade", set_as_current=False)
    app.conf.update(celery_config(settings))
    runtime = WorkerRuntime(settings)
    app.task(name=GRADE_TASK, bind=True, max_retries=None, shared=False)(_grade_task(runtime))
    app.task(name=RECONCILE_TASK, bind=True, shared=False)(_reconcile_task(runtime, app))
    app.task(name=WEBHOOKS_TASK, bind=True, shared=False)(_webhooks_task(runtime))
    worker_process_init.connect(runtime.after_fork, weak=False)
    worker_process_shutdown.connect(runtime.close_sandboxes, weak=False)
    worker_shutdown.connect(runtime.close_sandboxes, weak=False)
    return app


class WorkerRuntime:
    """Per-process state of a worker: the database engine (made lazily, and again in a
    forked pool child, whose inherited connections belong to the parent) and the
    sandboxes (:class:`SandboxProvider`: engine client, GPU pool, warm pool; made lazily
    in the process that grades, closed when it exits)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._factory: SessionFactory | None = None
        self._pid = 0
        self._sandboxes: SandboxProvider | None = None
        self._sandboxes_pid = 0
        self._scratch: tuple[Path, Path] | None = None  # (this process's folder, base)

    def sandboxes(self) -> SandboxProvider:
        if self._sandboxes is None or self._sandboxes_pid != os.getpid():
            self._sandboxes = SandboxProvider.from_settings(self.settings)
            self._sandboxes_pid = os.getpid()
            # After the provider, which may point tempfile at the Docker work dir: this
            # process's handins, sandbox roots and agent copy go below a folder of its
            # own, removed when it stops (atexit never runs in a pool process) or, when
            # it is killed, by the scratch collector (tasks.scratch).
            base = Path(tempfile.gettempdir())
            try:
                self._scratch = (enter_process_scratch(base), base)
            except OSError as exc:  # a full disk: the grading will find out, as a host fault
                log.error("no scratch folder of this process below %s: %s", base, exc)
        return self._sandboxes

    def close_sandboxes(self, **_: Any) -> None:
        if self._sandboxes is not None and self._sandboxes_pid == os.getpid():
            self._sandboxes.close()
            if self._scratch is not None:
                leave_process_scratch(*self._scratch)
                self._scratch = None
        self._sandboxes = None

    def db_factory(self) -> SessionFactory:
        if self._factory is None or self._pid != os.getpid():
            self._factory = make_session_factory(make_engine(self.settings.database_url))
            self._pid = os.getpid()
        return self._factory

    def after_fork(self, **_: Any) -> None:
        if self._factory is not None and self._pid != os.getpid():
            engine = self._factory.kw["bind"]
            engine.dispose(close=False)  # the parent's connections: leave them alone
            self._factory = None

    def job(self, hostname: str | None) -> GradingJob:
        worker = f"{hostname or socket.gethostname()}:{os.getpid()}"
        return GradingJob(self.settings, self.db_factory(), worker=worker,
                          sandboxes=self.sandboxes(), interrupts=(SoftTimeLimitExceeded,))

    def unhealthy(self, node: str) -> str:
        """Why ``node`` (this worker) cannot grade now ("" when it can)."""
        try:
            with self.db_factory()() as db:
                return heartbeats.health_of(db, node).problem
        except SQLAlchemyError:
            return ""  # the database decides nothing now; the grading will find out

    def report_unhealthy(self, node: str, problem: str) -> None:
        try:
            with self.db_factory()() as db:
                heartbeats.report_unhealthy(db, node, problem, utcnow())
        except SQLAlchemyError:
            log.warning("could not record that %s is unhealthy", node, exc_info=True)


def _grade_task(runtime: WorkerRuntime) -> Any:
    def grade_submission(self: Any, submission_id: int) -> str:
        """Grade one submission; the claim makes duplicate deliveries no-ops. A worker
        that cannot grade (its host is at fault) hands the job to another."""
        node = self.request.hostname or ""
        problem = runtime.unhealthy(node)
        if problem:
            return hand_on(self, submission_id, problem)
        try:
            outcome = runtime.job(node).run(submission_id)
        except HostFault as fault:
            runtime.report_unhealthy(node, fault.reason)
            return hand_on(self, submission_id, fault.reason)
        except Exception as exc:
            if self.request.retries >= FAILURE_RETRIES:
                raise
            countdown = min(2 ** self.request.retries * 5, 300)
            log.warning("submission %s: %s; retrying in %s s", submission_id, exc, countdown)
            raise self.retry(exc=exc, countdown=countdown) from exc
        if outcome == "busy":  # another worker holds a live lease: look again when it ends
            raise self.retry(countdown=_until_lease_expiry(runtime, submission_id) + 1)
        if outcome == "waiting":  # every GPU stayed busy: nothing claimed, try again soon
            raise self.retry(countdown=GPU_RETRY_SECONDS)
        return outcome

    return grade_submission


def hand_on(task: Any, submission_id: int, problem: str) -> str:
    """Stop this worker taking work from the queue that delivered ``submission_id``
    (its main process resumes when the host recovers, ``tasks.worker_main``) and publish
    the job again for another worker; the reconciler publishes it if this fails."""
    node = task.request.hostname
    queue = (task.request.delivery_info or {}).get("routing_key") or "cpu"
    log.error("%s cannot grade (%s): submission %s goes to another worker", node, problem,
              submission_id)
    try:
        task.app.control.cancel_consumer(queue, destination=[node], reply=False)
        task.app.send_task(GRADE_TASK, args=[submission_id], queue=queue,
                           countdown=HANDED_ON_SECONDS, retry=False)
    except (KombuError, RedisError, OSError) as exc:
        log.warning("could not hand submission %s on (%s); the reconciler will", submission_id,
                    exc)
    return "handed-on"


def _until_lease_expiry(runtime: WorkerRuntime, submission_id: int) -> float:
    try:
        with runtime.db_factory()() as db:
            return leases.seconds_until_expiry(db, submission_id)
    except SQLAlchemyError:
        return float(runtime.settings.lease_seconds)


def _reconcile_task(runtime: WorkerRuntime, app: Celery) -> Any:
    def reconcile_submissions(self: Any) -> int:
        """Re-publish submissions whose message may have been lost."""
        return reconcile(runtime.db_factory(), CeleryEnqueuer(app), runtime.settings)

    return reconcile_submissions


def _webhooks_task(runtime: WorkerRuntime) -> Any:
    def deliver_webhooks(self: Any) -> int:
        """Post the webhook deliveries that are due; returns how many were attempted."""
        return WebhookSender.from_settings(runtime.settings, runtime.db_factory()).run_pending()

    return deliver_webhooks
