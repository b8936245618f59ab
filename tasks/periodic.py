"""A daemon thread that runs one pass every ``interval`` seconds: the worker host's
reconciler, webhook sender and heartbeat, and the embedded worker's heartbeat.

A pass gets a database session factory: the one given, or one over an engine of the
thread's own (a Celery host's main process must not share its pool children's
connections). A failing pass (say, the database is down) is logged and the next one tried;
it never stops the thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from store.db import SessionFactory, make_engine, make_session_factory

log = logging.getLogger(__name__)


class Periodic:
    """Calls :meth:`run_once` every ``interval`` seconds (first at start-up when
    ``at_start``) from :meth:`start` until :meth:`stop`."""

    what = "periodic"
    at_start = False

    def __init__(self, interval: float, *, database_url: str | None = None,
                 db_factory: SessionFactory | None = None) -> None:
        if (database_url is None) == (db_factory is None):
            raise ValueError("give either database_url or db_factory")
        self.interval, self.database_url, self.db_factory = interval, database_url, db_factory
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        self.stopped.clear()
        self.thread = threading.Thread(target=self._loop, name=f"dlgrade-{self.what}",
                                       daemon=True)
        self.thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the pass in progress; wait up to ``timeout`` s for the thread."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def start_on_signal(self, **_: Any) -> None:
        """For Celery's ``worker_ready`` signal."""
        self.start()

    def stop_on_signal(self, **_: Any) -> None:
        """For Celery's ``worker_shutdown`` signal (does not wait: the process exits)."""
        self.stopped.set()

    def run_once(self, db_factory: SessionFactory) -> None:
        raise NotImplementedError

    def _pass(self, db_factory: SessionFactory) -> None:
        try:
            self.run_once(db_factory)
        except Exception:  # noqa: BLE001 - e.g. the database is down: next time
            log.exception("%s pass failed", self.what)

    def _loop(self) -> None:
        if self.db_factory is not None:
            self._run(self.db_factory)
            return
        assert self.database_url is not None
        engine = make_engine(self.database_url)
        try:
            self._run(make_session_factory(engine))
        finally:
            engine.dispose()

    def _run(self, db_factory: SessionFactory) -> None:
        if self.at_start:
            self._pass(db_factory)
        while not self.stopped.wait(self.interval):
            self._pass(db_factory)
