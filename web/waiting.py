"""What a student whose submission waits is told: its place in its queue and, from the
recent grading times and the graders alive for that queue, about how long it will take.

On a deadline night this is the difference between "position 212" and "position 212,
about 35 min to go"; and when no grader is running, the student is told that the upload
is stored and will be graded, rather than left watching a number that does not move.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store import heartbeats, queries
from store.models import Submission
from web.workers import duration


@dataclass(frozen=True)
class Wait:
    position: int
    graders: int  # gradings that can run at once on the workers alive for this queue
    typical_s: float | None  # median of the queue's recent grading times

    @property
    def seconds(self) -> int | None:
        """About how long until this submission is graded; None when unknown."""
        if not self.graders or self.typical_s is None:
            return None
        return round(math.ceil(self.position / self.graders) * self.typical_s)

    def message(self) -> str:
        head = f"queued — position {self.position} in queue"
        if not self.graders:
            return (f"{head}. No grader is running right now: your upload is stored safely "
                    "and will be graded as soon as one starts.")
        if self.seconds is None or self.typical_s is None:
            return head
        graders = f"{self.graders} grader{'' if self.graders == 1 else 's'}"
        return (f"{head}, about {duration(max(self.seconds, 1))} to go ({graders}, about "
                f"{duration(max(round(self.typical_s), 1))} per grading)")


def wait_of(db: Session, submission: Submission, now: datetime, alive_within_s: float) -> Wait:
    """The wait of a queued or running submission."""
    queue = submission.assignment.queue
    position = queries.queue_position(db, submission) or 1
    graders = sum(max(1, w.slots) for w in heartbeats.alive(db, now, alive_within_s)
                  if queue in w.queues.split(","))
    return Wait(position, graders, queries.typical_grading_seconds(db, queue))


def waiting(db: Session, submission: Submission, now: datetime, alive_within_s: float
            ) -> dict[str, Any]:
    """{position, wait_s, message} for the results page and the API (position and wait
    are None unless the submission is queued; the message is then its status)."""
    if submission.status != "queued":
        return {"position": None, "wait_s": None, "message": submission.status}
    wait = wait_of(db, submission, now, alive_within_s)
    return {"position": wait.position, "wait_s": wait.seconds, "message": wait.message()}
