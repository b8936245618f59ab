"""The worker side of ``store.heartbeats``: a daemon thread that upserts this worker's
row every ``settings.heartbeat_interval`` seconds with what it grades now, in the
embedded worker and on every Celery worker host. A failing database is logged and the
next beat tried; it never stops the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from store.db import SessionFactory
from store.heartbeats import WorkerInfo, beat, held_by
from store.models import utcnow
from tasks.periodic import Periodic

log = logging.getLogger(__name__)

Current = Callable[[SessionFactory], int | None]


def nothing(_: SessionFactory) -> int | None:
    return None


class Heartbeat(Periodic):
    """Beats at once on :meth:`start`, then every ``interval`` seconds until :meth:`stop`;
    ``current(db_factory)`` names the submission being graded."""

    what = "heartbeat"
    at_start = True

    def __init__(self, info: WorkerInfo, interval: float, current: Current = nothing, *,
                 database_url: str | None = None, db_factory: SessionFactory | None = None
                 ) -> None:
        super().__init__(interval, database_url=database_url, db_factory=db_factory)
        self.info, self.current = info, current
        self.beats = 0  # successful ones

    def run_once(self, db_factory: SessionFactory) -> None:
        self.beat(db_factory)

    def beat(self, db_factory: SessionFactory) -> bool:
        """One beat naming the submission being graded; never raises (False, and a log
        line, when the database could not be reached: the next beat retries)."""
        try:
            submission_id = self.current(db_factory)
            with db_factory() as db:
                beat(db, self.info, utcnow(), submission_id=submission_id)
        except Exception:  # noqa: BLE001 - e.g. the database is down
            log.exception("heartbeat of %s failed; trying again in the next interval",
                          self.info.worker)
            return False
        self.beats += 1
        return True


def held_by_node(worker: str) -> Current:
    """For a Celery host: the submission one of its pool children (``<worker>:<pid>``)
    holds a lease on."""
    def current(db_factory: SessionFactory) -> int | None:
        with db_factory() as db:
            return held_by(db, f"{worker}:", utcnow())

    return current
