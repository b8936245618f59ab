"""Which grading workers are alive, from their heartbeats (``store.heartbeats``): the
staff dashboard's live panel and the staff index show the same one-line summary, and a
warning when submissions wait while no worker has reported recently."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store import heartbeats
from store.models import WorkerHeartbeat

ALIVE_WITHIN_S = heartbeats.alive_window(10.0)  # for the default heartbeat interval


@dataclass(frozen=True)
class Worker:
    worker: str
    queues: str
    host: str
    sandbox: str
    gpus: str
    last_seen_s: int
    submission_id: int | None
    health: str = ""  # why it cannot grade now ("" when it can): tasks.health


@dataclass(frozen=True)
class WorkerState:
    alive: int
    by_queue: dict[str, int]
    last_seen_s: int | None  # the most recent beat of any worker, alive or not
    summary: str
    warning: str | None
    workers: list[Worker]  # the alive ones, most recently seen first

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def state(db: Session, now: datetime, queued: int,
          within_s: int = ALIVE_WITHIN_S) -> WorkerState:
    """The alive workers and what they grade; ``queued`` is the whole service's queue."""
    found = heartbeats.alive(db, now, within_s)
    newest = found[0] if found else next(iter(heartbeats.stale(db, now, within_s)), None)
    last_seen = _age(newest, now) if newest is not None else None
    by_queue = Counter(q for w in found for q in w.queues.split(",") if q)
    return WorkerState(
        alive=len(found), by_queue=dict(sorted(by_queue.items())), last_seen_s=last_seen,
        summary=summary(len(found), by_queue, last_seen,
                        sum(1 for w in found if w.health)),
        warning=warning(len(found), queued, within_s) or unhealthy_warning(found),
        workers=[Worker(w.worker, w.queues, w.host, w.sandbox, w.gpus, _age(w, now),
                        w.submission_id, w.health) for w in found],
    )


def summary(alive: int, by_queue: Counter[str] | dict[str, int], last_seen_s: int | None,
            unhealthy: int = 0) -> str:
    """``3 workers alive (cpu: 2, gpu: 1), 1 unhealthy, last seen 4 s ago``."""
    queues = ", ".join(f"{q}: {n}" for q, n in sorted(by_queue.items()))
    head = f"{alive} worker{'' if alive == 1 else 's'} alive" + (f" ({queues})" if queues else "")
    if unhealthy:
        head += f", {unhealthy} unhealthy"
    if last_seen_s is None:
        return f"{head}, none has ever reported"
    return f"{head}, last seen {duration(last_seen_s)} ago"


def warning(alive: int, queued: int, within_s: int = ALIVE_WITHIN_S) -> str | None:
    if alive or not queued:
        return None
    what = "submission waits" if queued == 1 else "submissions wait"
    return f"No worker has reported in the last {within_s} s while {queued} {what}."


def unhealthy_warning(found: list[WorkerHeartbeat]) -> str | None:
    """A worker whose host cannot grade says why (it takes no work until it recovers)."""
    sick = [w for w in found if w.health]
    if not sick:
        return None
    first = sick[0]
    more = f" ({len(sick) - 1} more)" if len(sick) > 1 else ""
    return f"Worker {first.worker} cannot grade: {first.health}{more}; its jobs go to others."


def duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _age(row: WorkerHeartbeat, now: datetime) -> int:
    return max(0, int((now - row.last_seen_at).total_seconds()))
