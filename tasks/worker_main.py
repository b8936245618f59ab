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
import threading
from collections.abc import Sequence
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from grader.registry import load_builtin_checks
from store.db import SessionFactory, make_engine, make_session_factory
from store.heartbeats import WorkerInfo, held_by
from store.models import QUEUES, utcnow
from tasks.celery_app import make_celery
from tasks.heartbeat import beat_safely
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
    info = worker_info(settings, queues, sandboxes.summary)
    sandboxes.close()
    app = make_celery(settings)
    load_builtin_checks()  # imported once here, inherited by every pool child (torch: ~3 s)
    for periodic in (PeriodicReconciler(settings, app), PeriodicWebhooks(settings),
                     PeriodicHeartbeat(settings, info)):
        worker_ready.connect(periodic.start_on_signal, weak=False)
        worker_shutdown.connect(periodic.stop_on_signal, weak=False)
    app.worker_main([
        "worker", f"--queues={','.join(queues)}", f"--concurrency={concurrency}",
        f"--pool={pool}", f"--hostname={info.worker}", f"--loglevel={loglevel}",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ])


class Periodic:
    """Runs :meth:`run_once` every ``interval`` seconds in a daemon thread of the worker's
    main process (first at start-up when ``at_start``), with a database engine of its own.
    A failing pass (say, the database is down) is logged and the next one tried."""

    what = "periodic"
    at_start = False

    def __init__(self, settings: Settings, interval: float) -> None:
        self.settings, self.interval = settings, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"dlgrade-{self.what}",
                                       daemon=True)

    def start_on_signal(self, **_: Any) -> None:
        if not self.thread.is_alive():
            self.thread.start()

    def stop_on_signal(self, **_: Any) -> None:
        self.stopped.set()

    def run_once(self, db_factory: SessionFactory) -> None:
        raise NotImplementedError

    def _pass(self, db_factory: SessionFactory) -> None:
        try:
            self.run_once(db_factory)
        except Exception:  # noqa: BLE001 - e.g. the database is down: next time
            log.exception("%s pass failed", self.what)

    def _loop(self) -> None:
        engine = make_engine(self.settings.database_url)
        db_factory = make_session_factory(engine)
        try:
            if self.at_start:
                self._pass(db_factory)
            while not self.stopped.wait(self.interval):
                self._pass(db_factory)
        finally:
            engine.dispose()


class PeriodicReconciler(Periodic):
    """Calls :func:`reconcile` every ``settings.reconcile_interval`` seconds."""

    what = "reconciler"

    def __init__(self, settings: Settings, app: Any) -> None:
        super().__init__(settings, settings.reconcile_interval)
        self.enqueuer = CeleryEnqueuer(app)

    def run_once(self, db_factory: SessionFactory) -> None:
        reconcile(db_factory, self.enqueuer, self.settings)


class PeriodicWebhooks(Periodic):
    """Runs :class:`WebhookSender` every ``settings.webhook_interval`` seconds."""

    what = "webhook"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, settings.webhook_interval)
        self.sender: WebhookSender | None = None

    def run_once(self, db_factory: SessionFactory) -> None:
        if self.sender is None:
            self.sender = WebhookSender.from_settings(self.settings, db_factory)
        self.sender.run_pending()


def worker_info(settings: Settings, queues: Sequence[str], sandbox: str) -> WorkerInfo:
    """This worker's heartbeat identity: its Celery node name (unique per process)."""
    return WorkerInfo(worker=worker_hostname(queues), queues=",".join(queues),
                      sandbox=sandbox, gpus=",".join(settings.gpu_ids),
                      host=socket.gethostname(), pid=os.getpid(), started_at=utcnow())


class PeriodicHeartbeat(Periodic):
    """Beats every ``settings.heartbeat_interval`` seconds (first at start-up)."""

    what = "heartbeat"
    at_start = True

    def __init__(self, settings: Settings, info: WorkerInfo) -> None:
        super().__init__(settings, settings.heartbeat_interval)
        self.info = info

    def run_once(self, db_factory: SessionFactory) -> None:
        self.beat(db_factory)

    def beat(self, db_factory: SessionFactory) -> bool:
        """One beat naming the submission a pool child of this node grades; never raises."""
        return beat_safely(db_factory, self.info, self._grading)

    def _grading(self, db_factory: SessionFactory) -> int | None:
        with db_factory() as db:
            return held_by(db, f"{self.info.worker}:", utcnow())


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
