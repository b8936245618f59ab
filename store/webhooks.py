"""Webhook rows: registering a course's endpoints, recording a completion event, and
summing up each endpoint's deliveries (:func:`delivery_stats`).

:func:`record_completion` runs inside the transaction that stores a submission's final
status (``store.leases``), so an event exists exactly when the result does: nothing is
lost if the process dies right after the commit, and nothing is sent for a result that
was rolled back. The sender (``tasks.webhooks``) posts the pending rows. These functions
add and flush; the caller commits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import scores
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


@dataclass(frozen=True)
class DeliveryStats:
    """A webhook's deliveries so far: how many are in each state, when the last one
    arrived, and the newest error (a delivery still retrying, or one that gave up)."""

    pending: int = 0
    delivered: int = 0
    failed: int = 0
    last_delivered_at: datetime | None = None
    last_error: str | None = None
    last_error_delivery: int | None = None


def delivery_stats(db: Session, webhook_ids: list[int]) -> dict[int, DeliveryStats]:
    """webhook id -> its :class:`DeliveryStats` (three grouped queries, any number of
    webhooks); webhooks without deliveries are absent."""
    if not webhook_ids:
        return {}
    of_these = WebhookDelivery.webhook_id.in_(webhook_ids)
    found: dict[int, dict[str, Any]] = {}
    for hook_id, status, count, delivered_at in db.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.status,
               func.count(WebhookDelivery.id), func.max(WebhookDelivery.delivered_at))
        .where(of_these).group_by(WebhookDelivery.webhook_id, WebhookDelivery.status)
    ):
        values = found.setdefault(hook_id, {})
        if status in ("pending", "delivered", "failed"):
            values[status] = int(count)
        if status == "delivered":
            values["last_delivered_at"] = delivered_at
    newest = (select(func.max(WebhookDelivery.id))
              .where(of_these, WebhookDelivery.last_error.is_not(None))
              .group_by(WebhookDelivery.webhook_id))
    for hook_id, delivery_id, error in db.execute(
        select(WebhookDelivery.webhook_id, WebhookDelivery.id, WebhookDelivery.last_error)
        .where(WebhookDelivery.id.in_(newest))
    ):
        found.setdefault(hook_id, {}).update(last_error=error, last_error_delivery=delivery_id)
    return {hook_id: DeliveryStats(**values) for hook_id, values in found.items()}


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
    """What the course's endpoint receives: the staff view (every test, the score that
    counts, ``results`` as Gradescope's results.json)."""

    def stamp(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "event": COMPLETED,
        "submission": {
            "id": submission.id, "course": course.slug, "assignment": assignment.slug,
            "student": user.email, "status": submission.status,
            "score": scores.total(submission),
            "max_score": submission.max_score, "late_days": submission.late_days,
            "error": submission.error, "created_at": stamp(submission.created_at),
            "finished_at": stamp(submission.finished_at), "results": _document(submission),
        },
    }


def _document(submission: Submission) -> dict[str, Any] | None:
    result = scores.stored_result(submission)
    return None if result is None else result.to_gradescope(
        adjustments=scores.adjustments_of(submission))
