"""Starting a production worker: ``run_worker(settings, queues)`` (what ``dlgrade worker``
calls; ``python -m tasks.worker_main --queues cpu`` does the same from the environment).

The worker is Celery's prefork pool (concurrency 1 by default: a grading saturates its
sandbox's CPU budget), so a pool child killed mid-grade is replaced and its message
redelivered. Its name includes the pid. The main process also runs the reconciler every
``settings.reconcile_interval`` seconds in a thread, so every worker host helps recover
what the broker lost; several reconcilers at once only publish duplicates, which the
claim absorbs. A second thread posts due webhook deliveries every
``settings.webhook_interval`` seconds (each delivery is claimed, so hosts never double-post).
A third beats every ``settings.heartbeat_interval`` seconds (:mod:`store.heartbeats`),
naming the submission its pool children grade (rows they hold under ``<node>:<pid>``);
with each beat it also breaks the leases of pool children that died (a SIGKILL, the OOM
killer), so their submissions are graded again at once rather than when the lease would
have run out, and, when a pool child reported a host fault (the worker is unhealthy and
stopped consuming), checks the host again and resumes consuming once it is well
(issues 17, 18). A fourth collects the host's scratch garbage at start and every
``SCRATCH_INTERVAL`` seconds (:mod:`tasks.scratch`).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from sqlalchemy import select

from grader.registry import load_builtin_checks
from grader.spec import SpecError, builtin_assignments, load_spec
from store import heartbeats, leases
from store.db import SessionFactory
from store.heartbeats import WorkerInfo
from store.models import QUEUES, Submission, utcnow
from tasks.celery_app import make_celery
from tasks.health import host_problem, scratch_folders
from tasks.heartbeat import Heartbeat, held_by_node
from tasks.jobs import pool_process_dead, time_limit_problem
from tasks.lti_passback import LtiPassback
from tasks.periodic import Periodic
from tasks.queueing import CeleryEnqueuer
from tasks.reconcile import reconcile
from tasks.sandboxes import SandboxProvider
from tasks.scratch import MARGIN_S, collect, scratch_roots
from tasks.settings import Settings
from tasks.webhooks import WebhookSender

log = logging.getLogger(__name__)

HEALTH_RECHECK_S = 30.0  # an unhealthy worker checks its host again after this long
SCRATCH_INTERVAL = 600.0


def worker_hostname(queues: Sequence[str]) -> str:
    """``cpu.12345@host``: unique per worker process (Celery wants unique node names)."""
    return f"{'-'.join(queues)}.{os.getpid()}@{socket.gethostname()}"


def run_worker(settings: Settings, queues: Sequence[str], *, concurrency: int = 1,
               pool: str = "prefork", loglevel: str = "INFO") -> None:
    """Run a Celery worker consuming ``queues`` until it is told to stop (SIGTERM)."""
    unknown = sorted(set(queues) - set(QUEUES))
    if not queues or unknown:
        raise ValueError(f"queues must be among {', '.join(QUEUES)} (got {list(queues)})")
    # Checked here, once, so a misconfigured sandbox stops the worker before it takes
    # work; each pool process builds its own (engine clients and threads do not fork).
    sandboxes = SandboxProvider.from_settings(settings)
    print(f"dlgrade worker ({','.join(queues)}): {sandboxes.describe()}", flush=True)
    info = worker_info(settings, queues, sandboxes.summary, concurrency)
    sandboxes.close()
    warn_about_time_limits(settings)
    app = make_celery(settings)
    load_builtin_checks()  # imported once here, inherited by every pool child (torch: ~3 s)
    heartbeat = NodeHeartbeat(info, settings, app, list(queues))
    scratch = PeriodicScratch(settings, Path(tempfile.gettempdir()))
    for periodic in (PeriodicReconciler(settings, app), PeriodicWebhooks(settings), heartbeat,
                     scratch):
        worker_ready.connect(periodic.start_on_signal, weak=False)
        worker_shutdown.connect(periodic.stop_on_signal, weak=False)
    app.worker_main([
        "worker", f"--queues={','.join(queues)}", f"--concurrency={concurrency}",
        f"--pool={pool}", f"--hostname={info.worker}", f"--loglevel={loglevel}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ])


class PeriodicReconciler(Periodic):
    """Calls :func:`reconcile` every ``settings.reconcile_interval`` seconds."""

    what = "reconciler"

    def __init__(self, settings: Settings, app: Any) -> None:
        super().__init__(settings.reconcile_interval, database_url=settings.database_url)
        self.settings = settings
        self.enqueuer = CeleryEnqueuer(app)

    def run_once(self, db_factory: SessionFactory) -> None:
        reconcile(db_factory, self.enqueuer, self.settings)


class NodeHeartbeat(Heartbeat):
    """The worker node's heartbeat, which also looks after its pool children: a dead
    child's leases are broken at once, and an unhealthy node resumes once well."""

    def __init__(self, info: WorkerInfo, settings: Settings, app: Any,
                 queues: list[str]) -> None:
        super().__init__(info, settings.heartbeat_interval, held_by_node(info.worker),
                         database_url=settings.database_url)
        self.settings, self.app, self.queues = settings, app, queues

    def run_once(self, db_factory: SessionFactory) -> None:
        self.beat(db_factory)
        with db_factory() as db:
            release_dead_children(db, self.info.worker)
            self.recover(db)

    def recover(self, db: Any) -> None:
        """Resume consuming when the host, checked again, is well."""
        health = heartbeats.health_of(db, self.info.worker)
        if not health.problem or health.since is None:
            return
        if utcnow() - health.since < timedelta(seconds=HEALTH_RECHECK_S):
            return
        problem = host_problem(scratch_folders(self.settings.sandbox_work_dir))
        if problem:
            heartbeats.report_unhealthy(db, self.info.worker, problem, utcnow())
            return
        heartbeats.clear_health(db, self.info.worker)
        log.warning("%s is well again (it was not: %s); taking work again", self.info.worker,
                    health.problem)
        for queue in self.queues:
            self.app.control.add_consumer(queue, destination=[self.info.worker], reply=False)


def release_dead_children(db: Any, node: str) -> list[int]:
    """Break the live leases held by pool processes of ``node`` that have died."""
    held = db.execute(select(Submission.id, Submission.worker, Submission.attempt).where(
        Submission.status == "running", Submission.lease_until > utcnow(),
        Submission.worker.startswith(f"{node}:", autoescape=True))).all()
    db.rollback()
    broken = []
    for row in held:
        # pool_process_dead compares the holder's node with ours: any pid of our node
        if pool_process_dead(row.worker, f"{node}:{os.getpid()}", parent=os.getpid()) \
                and leases.break_lease(db, row.id, row.worker, row.attempt):
            log.warning("submission %s: pool process %s died holding attempt %s; released",
                        row.id, row.worker, row.attempt)
            broken.append(int(row.id))
    return broken


class PeriodicScratch(Periodic):
    """Collects this host's scratch garbage (:func:`tasks.scratch.collect`) at start and
    every ``SCRATCH_INTERVAL`` seconds; anything a live grading may still use is left."""

    what = "scratch"
    at_start = True

    def __init__(self, settings: Settings, base: Path) -> None:
        super().__init__(SCRATCH_INTERVAL, database_url=settings.database_url)
        self.roots = scratch_roots(base, settings.sandbox_work_dir)
        self.older_than_s = settings.task_time_limit + MARGIN_S

    def run_once(self, db_factory: SessionFactory) -> None:
        done = collect(self.roots, older_than_s=self.older_than_s)
        for scrap in done.removed:
            log.warning("removed %s (%s, %d bytes), left by a grading that crashed",
                        scrap.path, scrap.kind, scrap.size)


def warn_about_time_limits(settings: Settings) -> None:
    """Say at start which built-in assignments this worker would refuse to grade."""
    for folder in builtin_assignments().values():
        try:
            problem = time_limit_problem(load_spec(folder), settings)
        except SpecError:
            continue
        if problem:
            print(f"dlgrade worker: will refuse {problem}", flush=True)


class PeriodicWebhooks(Periodic):
    """Runs :class:`WebhookSender` every ``settings.webhook_interval`` seconds."""

    what = "webhook"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.webhook_interval, database_url=settings.database_url)
        self.settings = settings
        self.sender: WebhookSender | None = None
        self.lti: LtiPassback | None = None

    def run_once(self, db_factory: SessionFactory) -> None:
        if self.sender is None:
            self.sender = WebhookSender.from_settings(self.settings, db_factory)
            self.lti = LtiPassback(db_factory, self.settings)  # LTI grade passback
        assert self.lti is not None
        try:
            self.lti.run_pending()
        finally:
            self.sender.run_pending()


def worker_info(settings: Settings, queues: Sequence[str], sandbox: str,
                concurrency: int = 1) -> WorkerInfo:
    """This worker's heartbeat identity: its Celery node name (unique per process), and
    how many gradings its pool runs at once."""
    return WorkerInfo(worker=worker_hostname(queues), queues=",".join(queues),
                      sandbox=sandbox, gpus=",".join(settings.gpu_ids),
                      host=socket.gethostname(), pid=os.getpid(), started_at=utcnow(),
                      slots=concurrency)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a dlgrade grading worker (Celery).")
    parser.add_argument("--queues", default="cpu", help="comma-separated: cpu, gpu")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--pool", default="prefork", choices=("prefork", "solo", "threads"))
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    run_worker(Settings.from_env(), [q for q in args.queues.split(",") if q],
               concurrency=args.concurrency, pool=args.pool, loglevel=args.loglevel)


if __name__ == "__main__":
    main()
