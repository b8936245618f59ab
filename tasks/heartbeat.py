"""The worker side of ``store.heartbeats``: a daemon thread that upserts this worker's
row every ``settings.heartbeat_interval`` seconds with what it grades now. A failing
database is logged and the next beat tried; it never stops the worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from store.db import SessionFactory
from store.heartbeats import WorkerInfo, beat
from store.models import utcnow

log = logging.getLogger(__name__)

Current = Callable[[SessionFactory], int | None]


def nothing(_: SessionFactory) -> int | None:
    return None


def beat_safely(db_factory: SessionFactory, info: WorkerInfo, current: Current = nothing) -> bool:
    """One beat: ``current(db_factory)`` names the submission being graded. False (and
    a log line) when the database could not be reached."""
    try:
        submission_id = current(db_factory)
        with db_factory() as db:
            beat(db, info, utcnow(), submission_id=submission_id)
    except Exception:  # noqa: BLE001 - e.g. the database is down: the next beat retries
        log.exception("heartbeat of %s failed; trying again in the next interval", info.worker)
        return False
    return True


class HeartbeatThread:
    """Beats at once on :meth:`start`, then every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, db_factory: SessionFactory, info: WorkerInfo, interval: float,
                 current: Current = nothing) -> None:
        self.db_factory, self.info = db_factory, info
        self.interval, self.current = interval, current
        self.beats = 0  # successful ones
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="dlgrade-heartbeat",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def beat(self) -> bool:
        ok = beat_safely(self.db_factory, self.info, self.current)
        self.beats += ok
        return ok

    def _loop(self) -> None:
        self.beat()
        while not self._stop.wait(self.interval):
            self.beat()
