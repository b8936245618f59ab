"""Per-student extensions: a student's effective deadlines, and granting, editing and
revoking them (staff, from the dashboard).

An :class:`~store.models.Extension` replaces the assignment's due date for one student.
Its late due date, when given, replaces the assignment's; when not given, the student
keeps the assignment's late window if that ends after the new due date, and otherwise
has none (late submissions close at the new due date). Uploads (open/closed, late days)
use these effective dates; :mod:`web.visibility` keeps tests revealed "after the due
date" withheld from everyone until the last extended student's submissions close.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store import assignment_settings
from store.assignment_settings import SettingsError
from store.models import Assignment, Enrollment, Extension, User
from web.formatting import utc as when

MAX_REASON = 2000


class ExtensionError(Exception):
    """Bad extension input; the message is one sentence for the staff member."""


@dataclass(frozen=True)
class Deadlines:
    """The dates that apply to one student (``extended`` when an extension set them)."""

    due_at: datetime | None
    late_due_at: datetime | None
    extended: bool = False

    @property
    def closes_at(self) -> datetime | None:
        return self.late_due_at or self.due_at


def assignment_deadlines(assignment: Assignment) -> Deadlines:
    return Deadlines(assignment.due_at, assignment.late_due_at)


def extended_deadlines(assignment: Assignment, extension: Extension) -> Deadlines:
    late = extension.late_due_at
    if late is None and assignment.late_due_at is not None \
            and assignment.late_due_at > extension.due_at:
        late = assignment.late_due_at
    return Deadlines(extension.due_at, late, extended=True)


def find(db: Session, assignment_id: int, user_id: int) -> Extension | None:
    return db.scalars(select(Extension).where(
        Extension.assignment_id == assignment_id, Extension.user_id == user_id)).first()


def deadlines_for(db: Session, assignment: Assignment, user: User) -> Deadlines:
    """The effective dates of ``user`` on ``assignment``."""
    extension = find(db, assignment.id, user.id)
    if extension is None:
        return assignment_deadlines(assignment)
    return extended_deadlines(assignment, extension)


def by_user(db: Session, assignment_id: int) -> dict[int, Extension]:
    found = db.scalars(select(Extension).where(Extension.assignment_id == assignment_id))
    return {extension.user_id: extension for extension in found}


def listed(db: Session, assignment_id: int) -> Sequence[Extension]:
    query = (select(Extension).join(Extension.user)
             .where(Extension.assignment_id == assignment_id).order_by(User.email))
    return db.scalars(query).all()


@dataclass(frozen=True)
class ExtensionForm:
    """What staff typed; dates as the form sends them (``YYYY-MM-DDTHH:MM``, UTC)."""

    email: str
    due_at: str
    late_due_at: str = ""
    reason: str = ""


def parse_when(text: str, what: str) -> datetime:
    """The form's date (ISO 8601, as ``store.assignment_settings`` reads it; UTC unless
    it has an offset); an empty or unreadable one gets the form's own message."""
    try:
        when = assignment_settings.parse_when(text, what)
    except SettingsError:
        when = None
    if when is None:
        raise ExtensionError(
            f"Enter the {what} as YYYY-MM-DD HH:MM in UTC (got {text.strip()!r}).")
    return when


def student_of(db: Session, assignment: Assignment, email: str) -> User:
    cleaned = email.strip()
    if not cleaned:
        raise ExtensionError("Enter the e-mail address of the student.")
    user = db.scalars(select(User).where(func.lower(User.email) == cleaned.lower())).first()
    if user is None:
        raise ExtensionError(f"No account has the e-mail address {cleaned}.")
    enrolled = db.scalar(select(Enrollment.role).where(
        Enrollment.user_id == user.id, Enrollment.course_id == assignment.course_id))
    if enrolled != "student":
        course = assignment.course.slug
        if enrolled is None:
            raise ExtensionError(f"{user.email} is not enrolled in {course}.")
        raise ExtensionError(f"{user.email} is on the staff of {course}, not a student.")
    return user


def validated(db: Session, assignment: Assignment, form: ExtensionForm) -> tuple[User, Deadlines]:
    """The student and the new dates, or :class:`ExtensionError` with the first problem."""
    user = student_of(db, assignment, form.email)
    if assignment.due_at is None:
        raise ExtensionError(f"{assignment.title} has no due date, so there is nothing to extend.")
    due = parse_when(form.due_at, "new due date")
    if due <= assignment.due_at:
        raise ExtensionError(
            f"The new due date ({when(due)}) must be after the assignment's own "
            f"({when(assignment.due_at)}); an extension can only give more time.")
    late = parse_when(form.late_due_at, "new late due date") if form.late_due_at.strip() else None
    if late is not None and late <= due:
        raise ExtensionError(
            f"The late due date ({when(late)}) must be after the new due date ({when(due)}).")
    if len(form.reason) > MAX_REASON:
        raise ExtensionError(f"Keep the reason under {MAX_REASON} characters.")
    return user, Deadlines(due, late, extended=True)


def grant(db: Session, assignment: Assignment, form: ExtensionForm, staff: User,
          now: datetime) -> Extension:
    """Create or replace the student's extension, and commit."""
    user, dates = validated(db, assignment, form)
    assert dates.due_at is not None  # validated() always sets it
    extension = find(db, assignment.id, user.id) or Extension(
        assignment_id=assignment.id, user_id=user.id)
    extension.due_at, extension.late_due_at = dates.due_at, dates.late_due_at
    extension.reason, extension.granted_by_id = form.reason.strip(), staff.id
    extension.created_at = now
    db.add(extension)
    db.commit()
    return extension


def revoke(db: Session, assignment: Assignment, user_id: int) -> bool:
    """Remove the student's extension; False when there was none."""
    removed = db.execute(delete(Extension).where(
        Extension.assignment_id == assignment.id, Extension.user_id == user_id))
    db.commit()
    return bool(getattr(removed, "rowcount", 0))
