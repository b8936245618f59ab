"""The objects a request needs, built once per app: settings, the database session
factory, the archive store, the enqueuer and the API rate limiter; and the
request-scoped database session.

Everything lives on ``app.extensions["dlgrade"]``; views reach it through
:func:`services` and :func:`get_db`, plain functions below receive it as arguments.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from store import heartbeats
from store.archives import ArchiveStore, remove_stale_staging
from store.db import SessionFactory, make_engine, make_session_factory
from tasks.queueing import BackgroundSubmitter, Enqueuer, make_enqueuer, submit
from tasks.settings import Settings
from web.ratelimit import RateLimiter, make_limiter

# An Enqueuer object may be given in the create_app mapping (tests); ``dlgrade serve``
# replaces ``Services.enqueuer`` with the one that wakes its embedded worker.
ENQUEUER_KEY = "DLGRADE_ENQUEUER_OBJECT"

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    db_factory: SessionFactory
    archives: ArchiveStore
    enqueuer: Enqueuer
    limiter: RateLimiter
    publisher: BackgroundSubmitter | None = None  # for an enqueuer that may block

    def alive_window(self) -> int:
        """Silence after which a worker is presumed gone (follows the heartbeat interval)."""
        return heartbeats.alive_window(self.settings.heartbeat_interval)

    def enqueue(self, submission_id: int) -> bool:
        """Publish after commit; False when the broker is down (the reconciler retries).
        A broker enqueuer publishes from a background thread: the request that committed
        the row answers at once, whatever the broker does (True: handed over)."""
        if getattr(self.enqueuer, "may_block", False):
            if self.publisher is None or self.publisher.enqueuer is not self.enqueuer:
                self.publisher = BackgroundSubmitter(self.db_factory, self.enqueuer)
            return self.publisher.submit(submission_id)
        return submit(self.db_factory, self.enqueuer, submission_id)


def init_app(app: Flask, settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    archives = ArchiveStore(settings.data_dir)
    # What uploads killed mid-way (a web worker killed, a power loss) left staged.
    for path in remove_stale_staging(archives):
        log.warning("removed %s, left by an interrupted upload", path)
    app.extensions["dlgrade"] = Services(
        settings=settings,
        engine=engine,
        db_factory=make_session_factory(engine),
        archives=archives,
        enqueuer=_enqueuer(app.config, settings),
        limiter=make_limiter(settings),
    )
    app.teardown_appcontext(close_db)


def _enqueuer(config: Mapping[str, Any], settings: Settings) -> Enqueuer:
    given = config.get(ENQUEUER_KEY)
    return cast(Enqueuer, given) if given is not None else make_enqueuer(settings)


def services() -> Services:
    return cast(Services, current_app.extensions["dlgrade"])


def get_db() -> Session:
    """The request's database session, opened on first use and closed at teardown."""
    if "db" not in g:
        g.db = services().db_factory()
    return cast(Session, g.db)


def close_db(exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is None:
        return
    try:
        db.close()
    except SQLAlchemyError as error:  # the database went away mid-request: nothing to end
        log.warning("closing the request's database session failed (%s)", type(error).__name__)
        with contextlib.suppress(SQLAlchemyError):
            db.invalidate()
