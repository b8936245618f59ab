"""Worker heartbeats: each grading worker upserts one row every few seconds (who it is,
what it serves, what it grades now), so staff can tell an idle worker from a dead one.

``beat`` is one atomic upsert on SQLite and Postgres (``INSERT ... ON CONFLICT``), and
prunes rows nobody has refreshed for :data:`PRUNE_AFTER`. Every function that writes
commits itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.leases import lease_expired, rowcount
from store.models import Submission, WorkerHeartbeat

PRUNE_AFTER = timedelta(days=1)
ALIVE_WITHIN_S = 60.0  # at least: a worker silent longer than this is presumed dead
MISSED_BEATS = 6  # ... and never before it has missed this many beats


def alive_window(heartbeat_interval: float) -> int:
    """Seconds of silence after which a worker beating every ``heartbeat_interval``
    seconds is presumed dead: 60, or six beats when the interval is longer than 10 s."""
    return int(max(ALIVE_WITHIN_S, MISSED_BEATS * heartbeat_interval))


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker says about itself on every beat (fixed for its lifetime)."""

    worker: str
    queues: str = ""  # comma-separated: cpu, gpu
    sandbox: str = ""
    gpus: str = ""
    host: str = ""
    pid: int = 0
    started_at: datetime | None = None  # None: the first beat's time
    slots: int = 1  # gradings it runs at once (a Celery worker's concurrency)


def beat(db: Session, info: WorkerInfo, now: datetime, *,
         submission_id: int | None = None) -> None:
    """Record that ``info.worker`` is alive at ``now``, grading ``submission_id``."""
    values: dict[str, Any] = {
        "worker": info.worker, "queues": info.queues, "sandbox": info.sandbox,
        "gpus": info.gpus, "host": info.host, "pid": info.pid, "slots": max(1, info.slots),
        "started_at": info.started_at or now, "last_seen_at": now,
        "submission_id": submission_id,
    }
    changes = {k: v for k, v in values.items() if k not in ("worker", "started_at")}
    dialect = db.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        db.execute(insert(WorkerHeartbeat).values(**values)
                   .on_conflict_do_update(index_elements=["worker"], set_=changes))
    else:  # another database: update, else insert (a racing twin only loses one beat)
        found = db.execute(update(WorkerHeartbeat)
                           .where(WorkerHeartbeat.worker == info.worker).values(**changes))
        if rowcount(found) == 0:
            db.add(WorkerHeartbeat(**values))
    prune(db, now, commit=False)
    db.commit()


def prune(db: Session, now: datetime, older_than: timedelta = PRUNE_AFTER, *,
          commit: bool = True) -> int:
    """Delete the rows of workers not seen for ``older_than``; returns how many."""
    gone = db.execute(delete(WorkerHeartbeat)
                      .where(WorkerHeartbeat.last_seen_at < now - older_than)
                      .execution_options(synchronize_session=False))
    if commit:
        db.commit()
    return rowcount(gone)


def alive(db: Session, now: datetime, within_s: float = ALIVE_WITHIN_S) -> list[WorkerHeartbeat]:
    """Workers seen in the last ``within_s`` seconds, most recently seen first."""
    return list(db.scalars(
        select(WorkerHeartbeat)
        .where(WorkerHeartbeat.last_seen_at >= now - timedelta(seconds=within_s))
        .order_by(WorkerHeartbeat.last_seen_at.desc(), WorkerHeartbeat.worker)))


def stale(db: Session, now: datetime, within_s: float = ALIVE_WITHIN_S) -> list[WorkerHeartbeat]:
    """Workers silent for more than ``within_s`` seconds (not yet pruned), most recent
    first: those that died or were stopped lately."""
    return list(db.scalars(
        select(WorkerHeartbeat)
        .where(WorkerHeartbeat.last_seen_at < now - timedelta(seconds=within_s))
        .order_by(WorkerHeartbeat.last_seen_at.desc(), WorkerHeartbeat.worker)))


def held_by(db: Session, prefix: str, now: datetime) -> int | None:
    """The submission a worker whose names start with ``prefix`` grades under a live
    lease (a Celery worker's pool children are ``<node>:<pid>``), if any."""
    return db.scalar(
        select(Submission.id)
        .where(Submission.status == "running", ~lease_expired(now),
               Submission.worker.startswith(prefix, autoescape=True))
        .order_by(Submission.started_at.desc(), Submission.id.desc()).limit(1))


def report_unhealthy(db: Session, worker: str, health: str, now: datetime) -> bool:
    """Mark ``worker`` as unable to grade now, saying why (one sentence); the time it
    first became unhealthy is kept. False when the worker has no row (not yet beaten)."""
    found = db.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.worker == worker)
                       .values(health=health[:500]).execution_options(synchronize_session=False))
    db.execute(update(WorkerHeartbeat)
               .where(WorkerHeartbeat.worker == worker, WorkerHeartbeat.unhealthy_since.is_(None))
               .values(unhealthy_since=now).execution_options(synchronize_session=False))
    db.commit()
    return rowcount(found) == 1


def clear_health(db: Session, worker: str) -> None:
    db.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.worker == worker)
               .values(health="", unhealthy_since=None)
               .execution_options(synchronize_session=False))
    db.commit()


@dataclass(frozen=True)
class Health:
    problem: str  # "" when healthy
    since: datetime | None


def health_of(db: Session, worker: str) -> Health:
    """What ``worker``'s row says of its health (healthy when it has no row)."""
    row = db.execute(select(WorkerHeartbeat.health, WorkerHeartbeat.unhealthy_since)
                     .where(WorkerHeartbeat.worker == worker)).first()
    db.rollback()
    if row is None:
        return Health("", None)
    return Health(row.health or "", row.unhealthy_since)
