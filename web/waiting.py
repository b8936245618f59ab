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

The position is in the order gradings really happen (:mod:`store.scheduling`: what is
being graded, then one turn per student), and the model counts the work ahead by each
assignment's own grading time (issue 12, item 8): the median of that assignment's recent
gradings (the queue's when it has too few), and, for what is being graded now, the time
it still needs, which for a grading already past its usual time is about as long as it
has run, at most until its total time limit. While a grading ahead runs long, the recent
pace (which it does not show) is not used. Only workers that can grade are counted.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from grader.spec import SpecError
from store import heartbeats, queries, scheduling
from store.models import Assignment, Submission
from web.lookups import spec_for
from web.workers import duration

OBSERVED_WINDOW_S = 300.0  # finishes this recent show the queue's current pace
OBSERVED_MINIMUM = 5  # ... when there are at least this many
OWN_MINIMUM = 3  # an assignment's own gradings that make its typical time
OVERDUE = 2.0  # a grading running this many times its typical time runs long
ORDERS = scheduling.OrderCache()  # every waiting student polls; the order is read once


@dataclass(frozen=True)
class Wait:
    position: int
    graders: int  # gradings that can run at once on the workers alive for this queue
    typical_s: float | None  # median time a recent grading held its grader
    observed_per_s: float | None = None  # gradings finished per second lately (a rush)
    work_s: float | None = None  # grading time ahead, itself included, per assignment
    overdue: bool = False  # a grading ahead runs far past its usual time

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
        if rate is None:
            return None
        if self.work_s is None:
            return round(self.position / rate)
        modelled = self.work_s / self.graders
        if self.observed_per_s and not self.overdue:
            return round(min(modelled, self.position / self.observed_per_s))
        return round(modelled)

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
        if self.overdue:
            pace = "a grading ahead of yours is taking longer than usual"
        return f"{head}, about {duration(max(seconds, 1))} to go ({graders}, {pace})"


def wait_of(db: Session, submission: Submission, now: datetime, alive_within_s: float) -> Wait:
    """The wait of a queued or running submission."""
    found = scheduling.place(db, submission, now, ORDERS)
    queue = submission.assignment.queue
    wait = queue_wait(db, queue, found.position if found else 1, now, alive_within_s)
    if found is None or wait.typical_s is None:
        return wait
    work, overdue = work_ahead(db, queue, found.ahead, now, wait.typical_s)
    return replace(wait, work_s=work, overdue=overdue)


def queue_wait(db: Session, queue: str, position: int, now: datetime,
               alive_within_s: float) -> Wait:
    """The wait of whatever is at ``position`` in ``queue`` (the last one: until it drains)."""
    graders = sum(max(1, w.slots) for w in heartbeats.alive(db, now, alive_within_s)
                  if queue in w.queues.split(",") and not w.health)
    recent = queries.recent_gradings(db, queue)
    typical = median_s(recent)
    return Wait(position, graders, typical, observed_rate(recent, now))


def median_s(recent: list[queries.Finished]) -> float | None:
    return statistics.median((r.finished_at - r.started_at).total_seconds()
                             for r in recent) if recent else None


def work_ahead(db: Session, queue: str, ahead: list[scheduling.Ahead], now: datetime,
               queue_typical: float) -> tuple[float, bool]:
    """(Seconds of grading before the submission is graded, itself included; whether one
    being graded runs far past its usual time), by each assignment's own times."""
    typical: dict[int, float] = {}
    budget: dict[int, float | None] = {}
    total, overdue = 0.0, False
    for item in ahead:
        if item.assignment_id not in typical:
            own = queries.recent_gradings(db, queue, assignment_id=item.assignment_id)
            typical[item.assignment_id] = (median_s(own) if len(own) >= OWN_MINIMUM
                                           else None) or queue_typical
            budget[item.assignment_id] = time_budget(db, item.assignment_id)
        usual = typical[item.assignment_id]
        if item.started_at is None:
            total += usual
            continue
        elapsed = max(0.0, (now - item.started_at).total_seconds())
        if elapsed > OVERDUE * usual:
            overdue = True
        left = usual - elapsed if elapsed < usual else elapsed
        limit = budget[item.assignment_id]
        total += max(1.0, min(left, limit - elapsed) if limit is not None else left)
    return total, overdue


def time_budget(db: Session, assignment_id: int) -> float | None:
    """The assignment's total grading time limit (None when its spec cannot be read)."""
    assignment = db.get(Assignment, assignment_id)
    if assignment is None:
        return None
    try:
        return spec_for(assignment).time_budget_s
    except SpecError:
        return None


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
