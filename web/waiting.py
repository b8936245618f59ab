"""What a student whose submission waits is told: its place in its queue and, from the
recent gradings and the graders alive for that queue, about how long it will take.

The queue moves at the faster of two rates: graders alive x 1 / (median time a grading
holds a grader, claim to stored result, over the last 50), which holds when the queue has
been quiet, and the rate at which the last gradings of the last five minutes actually
finished, which holds in a rush (it includes everything the first leaves out: contention
between gradings on one host, the time between one grading and the next).

On a deadline night this is the difference between "position 212" and "position 212,
about 35 min to go"; and when no grader is running, the student is told that the upload
is stored and will be graded, rather than left watching a number that does not move.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store import heartbeats, queries
from store.models import Submission
from web.workers import duration

OBSERVED_WINDOW_S = 300.0  # finishes this recent show the queue's current pace
OBSERVED_MINIMUM = 5  # ... when there are at least this many


@dataclass(frozen=True)
class Wait:
    position: int
    graders: int  # gradings that can run at once on the workers alive for this queue
    typical_s: float | None  # median time a recent grading held its grader
    observed_per_s: float | None = None  # gradings finished per second lately (a rush)

    @property
    def per_second(self) -> float | None:
        """How fast the queue moves now; None when nothing tells."""
        if not self.graders or self.typical_s is None:
            return None
        modelled = self.graders / max(self.typical_s, 0.001)
        return max(modelled, self.observed_per_s or 0.0)

    @property
    def seconds(self) -> int | None:
        """About how long until this submission is graded; None when unknown."""
        rate = self.per_second
        return None if rate is None else round(self.position / rate)

    def message(self) -> str:
        head = f"queued — position {self.position} in queue"
        if not self.graders:
            return (f"{head}. No grader is running right now: your upload is stored safely "
                    "and will be graded as soon as one starts.")
        rate, seconds = self.per_second, self.seconds
        if rate is None or seconds is None or self.typical_s is None:
            return head
        graders = f"{self.graders} grader{'' if self.graders == 1 else 's'}"
        pace = (f"about {duration(max(round(self.typical_s), 1))} per grading"
                if rate * 60 < 10 else f"grading about {round(rate * 60)} a minute")
        return f"{head}, about {duration(max(seconds, 1))} to go ({graders}, {pace})"


def wait_of(db: Session, submission: Submission, now: datetime, alive_within_s: float) -> Wait:
    """The wait of a queued or running submission."""
    position = queries.queue_position(db, submission) or 1
    return queue_wait(db, submission.assignment.queue, position, now, alive_within_s)


def queue_wait(db: Session, queue: str, position: int, now: datetime,
               alive_within_s: float) -> Wait:
    """The wait of whatever is at ``position`` in ``queue`` (the last one: until it drains)."""
    graders = sum(max(1, w.slots) for w in heartbeats.alive(db, now, alive_within_s)
                  if queue in w.queues.split(","))
    recent = queries.recent_gradings(db, queue)
    typical = statistics.median((r.finished_at - r.started_at).total_seconds()
                                for r in recent) if recent else None
    return Wait(position, graders, typical, observed_rate(recent, now))


def drain(db: Session, queue: str, now: datetime, alive_within_s: float) -> dict[str, Any]:
    """For staff: how many wait or run in ``queue`` and about how long until it is empty."""
    pending = queries.queue_depth(db, queue)
    if not pending:
        return {"queue": queue, "pending": 0, "seconds": 0,
                "summary": f"the {queue} queue is empty"}
    wait = queue_wait(db, queue, pending, now, alive_within_s)
    head = f"{pending} waiting or running in the {queue} queue"
    if wait.seconds is None:
        why = "no grader is running" if not wait.graders else "no grading has finished yet"
        return {"queue": queue, "pending": pending, "seconds": None,
                "summary": f"{head}; {why}, so no estimate"}
    pace = wait.per_second or 0.0
    return {"queue": queue, "pending": pending, "seconds": wait.seconds,
            "summary": f"{head}, about {duration(max(wait.seconds, 1))} to drain at "
                       f"{pace * 60:.0f} gradings a minute"}


def observed_rate(recent: list[queries.Finished], now: datetime) -> float | None:
    """Gradings per second over the finishes of the last five minutes (None for fewer
    than five, or all at one instant)."""
    lately = [r.finished_at for r in recent
              if (now - r.finished_at).total_seconds() <= OBSERVED_WINDOW_S]
    if len(lately) < OBSERVED_MINIMUM:
        return None
    span = (max(lately) - min(lately)).total_seconds()
    return (len(lately) - 1) / span if span > 0 else None


def waiting(db: Session, submission: Submission, now: datetime, alive_within_s: float
            ) -> dict[str, Any]:
    """{position, wait_s, message} for the results page and the API (position and wait
    are None unless the submission is queued; the message is then its status)."""
    if submission.status != "queued":
        return {"position": None, "wait_s": None, "message": submission.status}
    wait = wait_of(db, submission, now, alive_within_s)
    return {"position": wait.position, "wait_s": wait.seconds, "message": wait.message()}
