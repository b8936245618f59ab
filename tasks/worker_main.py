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
naming the submission its pool children grade (rows they hold under ``<node>:<pid>``).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from grader.registry import load_builtin_checks
from store.db import SessionFactory
from store.heartbeats import WorkerInfo
from store.models import QUEUES, utcnow
from tasks.celery_app import make_celery
from tasks.heartbeat import Heartbeat, held_by_node
from tasks.lti_passback import LtiPassback
from tasks.periodic import Periodic
from tasks.queueing import CeleryEnqueuer
from tasks.reconcile import reconcile
from tasks.sandboxes import SandboxProvider
from tasks.settings import Settings
from tasks.webhooks import WebhookSender

log = logging.getLogger(__name__)


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
    app = make_celery(settings)
    load_builtin_checks()  # imported once here, inherited by every pool child (torch: ~3 s)
    heartbeat = Heartbeat(info, settings.heartbeat_interval, held_by_node(info.worker),
                          database_url=settings.database_url)
    for periodic in (PeriodicReconciler(settings, app), PeriodicWebhooks(settings), heartbeat):
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
