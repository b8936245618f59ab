"""Real Celery workers for the reliability tests: ``python -m tasks.worker_main`` in a
process group of its own (so SIGKILL reaches the pool children), against the test
Redis and a fresh Postgres database; the web under gunicorn (``dlgrade web``); a
Postgres of a test's own that it can restart; small full filesystems (tmpfs); and an
API client that resends like ``dlgrade submit`` and records what it was told."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sandbox.process_backend import unavailable_reason
from store.db import SessionFactory, make_engine, make_session_factory
from store.migrate import upgrade
from store.models import Submission, TestScore
from tasks.settings import Settings
from tests.conftest import ROOT
from tests.services import World, wait_for

RELIABILITY_SETTINGS = {
    "DLGRADE_SECRET_KEY": "reliability-test-secret",
    "DLGRADE_LEASE_SECONDS": "5",
    "DLGRADE_MAX_ATTEMPTS": "3",
    # Long enough for mytorch-cnn's test timeouts (1080 s): shorter is refused at load.
    "DLGRADE_TASK_TIME_LIMIT": "1800",
    "DLGRADE_VISIBILITY_TIMEOUT": "2400",
    "DLGRADE_RECONCILE_INTERVAL": "1",
    "DLGRADE_QUEUED_STALE_AFTER": "5",
    # The real sandbox where this machine has one; H1 grades the reference solution.
    "DLGRADE_SANDBOX": "auto" if unavailable_reason() is None else "none",
    # These production workers must use the Docker sandbox even on a distribution's runc
    # whose version predates the upstream fixes (Debian 12: 1.1.5+ds1): warn, not refuse.
    "DLGRADE_RUNTIME_CHECK": "warn",
}


@dataclass
class Cluster:
    """Starts and stops workers sharing one broker, database and data directory."""

    broker_url: str
    database_url: str
    data_dir: Path
    logs: Path
    db_factory: SessionFactory
    overrides: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DLGRADE_")}
        env.update(RELIABILITY_SETTINGS)
        env.update({
            "DLGRADE_BROKER_URL": self.broker_url, "DLGRADE_DATABASE_URL": self.database_url,
            "DLGRADE_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1",
        })
        env.update(self.overrides)
        env.update(extra)
        return env

    def start_worker(self, concurrency: int = 1, **extra: str) -> Worker:
        # Each worker's scratch (TMPDIR) is the test's own, never the machine's /tmp.
        scratch = self.logs.parent / f"scratch-{len(self.workers)}"
        scratch.mkdir(exist_ok=True)
        scratch.chmod(0o755)
        extra = {"TMPDIR": str(scratch), **extra}
        log = self.logs / f"worker-{len(self.workers)}.log"
        with log.open("wb") as output:  # the child keeps its own descriptor
            process = subprocess.Popen(
                [sys.executable, "-m", "tasks.worker_main", "--queues", "cpu",
                 "--concurrency", str(concurrency), "--loglevel", "INFO"],
                cwd=ROOT, env=self.env(**extra), stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(log, process)
        self.workers.append(worker)
        worker.wait_ready()
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.kill()

    def settings(self) -> Settings:
        """The same settings as the workers', for publishing and reconciling from the test."""
        return Settings.from_mapping(self.env())

    def world(self) -> World:
        return World.create(self.db_factory, self.data_dir)

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        try:
            return wait_for(predicate, timeout, what=what)
        except pytest.fail.Exception:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{self.logs_text()}")

    def logs_text(self) -> str:
        return "\n".join(f"==== {w.log.name}\n{w.log.read_text(errors='replace')[-6000:]}"
                         for w in self.workers)


@dataclass
class Worker:
    log: Path
    process: subprocess.Popen[bytes]

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited early:\n{self.text()}")
            return " ready." in self.text()

        wait_for(ready, timeout, what=f"the worker to start ({self.log})")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group: the main process and its pool children."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def make_cluster(broker_url: str, database_url: str, tmp_path: Path,
                 **overrides: str) -> Cluster:
    """A migrated database and the settings every worker of the test shares."""
    upgrade(database_url)
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    factory = make_session_factory(make_engine(database_url))
    return Cluster(broker_url, database_url, tmp_path / "data", logs, factory,
                   {f"DLGRADE_{k.upper()}": v for k, v in overrides.items()})


@pytest.fixture
def clusters() -> Iterator[list[Cluster]]:
    """Clusters made by the test; their workers are killed and engines disposed after."""
    made: list[Cluster] = []
    yield made
    for cluster in made:
        cluster.stop_all()
        cluster.db_factory.kw["bind"].dispose()


def state_of(cluster: Cluster, submission_id: int) -> tuple[str, int, int]:
    """(status, attempt, number of TestScore rows) of one submission."""
    with cluster.db_factory() as db:
        row = db.get(Submission, submission_id)
        assert row is not None
        tests = db.scalar(select(func.count(TestScore.id))
                          .where(TestScore.submission_id == submission_id))
        return row.status, row.attempt, int(tests or 0)
