"""Webhook rows: registering a course's endpoints, and recording a completion event.

:func:`record_completion` runs inside the transaction that stores a submission's final
status (``store.leases``), so an event exists exactly when the result does: nothing is
lost if the process dies right after the commit, and nothing is sent for a result that
was rolled back. The sender (``tasks.webhooks``) posts the pending rows. These functions
add and flush; the caller commits.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Assignment, Course, Submission, User, Webhook, WebhookDelivery, utcnow

COMPLETED = "submission.completed"
EVENTS = (COMPLETED,)


def create_webhook(db: Session, course_id: int, url: str, events: tuple[str, ...] = EVENTS
                   ) -> Webhook:
    """A new active webhook with a fresh random secret (``whsec_...``)."""
    hook = Webhook(course_id=course_id, url=url, secret="whsec_" + secrets.token_urlsafe(32),
                   events=" ".join(events), active=True)
    db.add(hook)
    db.flush()
    return hook


def course_webhooks(db: Session, course_id: int) -> list[Webhook]:
    return list(db.scalars(select(Webhook).where(Webhook.course_id == course_id)
                           .order_by(Webhook.id)))


def record_completion(db: Session, submission_id: int, now: datetime | None = None) -> int:
    """Add a pending delivery of ``submission.completed`` for every active webhook of the
    submission's course that wants it; returns how many. Reads the row as this
    transaction sees it (the status just written)."""
    now = now or utcnow()
    row = db.execute(
        select(Submission, Assignment, Course, User)
        .join(Assignment, Submission.assignment_id == Assignment.id)
        .join(Course, Assignment.course_id == Course.id)
        .join(User, Submission.user_id == User.id)
        .where(Submission.id == submission_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        return 0
    submission, assignment, course, user = row
    hooks = db.scalars(select(Webhook).where(Webhook.course_id == course.id,
                                             Webhook.active.is_(True))).all()
    wanted = [hook for hook in hooks if COMPLETED in hook.events.split()]
    payload = completion_payload(submission, assignment, course, user)
    for hook in wanted:
        db.add(WebhookDelivery(webhook_id=hook.id, submission_id=submission.id, event=COMPLETED,
                               payload=payload, status="pending", attempts=0,
                               next_attempt_at=now, created_at=now))
    db.flush()
    return len(wanted)


def completion_payload(submission: Submission, assignment: Assignment, course: Course,
                       user: User) -> dict[str, Any]:
    """What the course's endpoint receives: the staff view (every test, stored score)."""

    def stamp(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "event": COMPLETED,
        "submission": {
            "id": submission.id, "course": course.slug, "assignment": assignment.slug,
            "student": user.email, "status": submission.status, "score": submission.score,
            "max_score": submission.max_score, "late_days": submission.late_days,
            "error": submission.error, "created_at": stamp(submission.created_at),
            "finished_at": stamp(submission.finished_at), "results": submission.results,
        },
    }
