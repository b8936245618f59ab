"""Live progress of a running grading (:class:`store.web_models.GradingProgress`).

The grading job passes :func:`recorder` to the grader as its progress callback; each
report upserts the submission's one row in a short transaction of its own, at most once
a second unless a new test starts. A failure to write is logged and ignored: progress
is advisory and must never fail a grading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from store.db import SessionFactory
from store.models import utcnow
from store.web_models import GradingProgress

log = logging.getLogger(__name__)
EVERY_S = 1.0


def recorder(db_factory: SessionFactory, submission_id: int, attempt: int,
             every_s: float = EVERY_S) -> Callable[[dict[str, Any]], None]:
    """A progress callback that keeps the latest state of this attempt."""
    state: dict[str, Any] = {}
    last = [0.0]

    def report(update: dict[str, Any]) -> None:
        starting = "test" in update
        if starting:
            state.clear()
        state.update(update)
        now = time.monotonic()
        if not starting and now - last[0] < every_s:
            return
        last[0] = now
        try:
            with db_factory() as db, db.begin():
                write(db, submission_id, attempt, dict(state))
        except SQLAlchemyError:
            log.warning("submission %s: could not record progress", submission_id,
                        exc_info=True)

    return report


def write(db: Session, submission_id: int, attempt: int, state: dict[str, Any],
          now: datetime | None = None) -> None:
    row = db.get(GradingProgress, submission_id)
    if row is None:
        row = GradingProgress(submission_id=submission_id)
        db.add(row)
    row.attempt, row.state, row.updated_at = attempt, state, now or utcnow()


def current(db: Session, submission_id: int, attempt: int,
            since: datetime | None) -> dict[str, Any] | None:
    """The state of this attempt of a running grading, if it reported any since it
    started (an earlier grading's row is ignored)."""
    row = db.get(GradingProgress, submission_id)
    if row is None or row.attempt != attempt or (since is not None and row.updated_at < since):
        return None
    return dict(row.state)
