"""An assignment's settings (title, dates, late policy, limits) and its row.

Used by ``dlgrade assignments add`` and the staff pages alike. Dates are ISO 8601;
one without a UTC offset is taken as UTC (``2025-03-01T23:59`` is 23:59 UTC), as is the
value of a browser's ``datetime-local`` field. Every check raises :class:`SettingsError`
with a sentence a TA can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.assignment_folders import StoredFolder
from store.models import Assignment, Course

UNSET: Any = object()  # "leave as it is" in Changes


class SettingsError(Exception):
    """Settings that cannot be saved; the message says which and why."""


def parse_when(text: str | None, label: str) -> datetime | None:
    """``text`` as an aware UTC datetime; empty means none. Naive times are UTC."""
    if text is None or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SettingsError(f"{label}: {text!r} is not a date and time in ISO 8601 form, such "
                            "as 2025-03-01T23:59 (UTC) or 2025-03-01T23:59+01:00.") from None
    return (when.replace(tzinfo=UTC) if when.tzinfo is None else when).astimezone(UTC)


@dataclass
class Changes:
    """What to set on an assignment; ``UNSET`` fields keep their current value."""

    title: Any = UNSET
    release_at: Any = UNSET
    due_at: Any = UNSET
    late_due_at: Any = UNSET
    late_penalty_per_day: Any = UNSET
    daily_limit: Any = UNSET
    hidden_visible_after_due: Any = UNSET

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not UNSET}


def apply(assignment: Assignment, changes: Changes) -> None:
    """Check the settings ``assignment`` would have after ``changes``, then set them."""
    merged = {f.name: getattr(assignment, f.name) for f in fields(Changes)} | changes.given()
    check(merged)
    for name, value in changes.given().items():
        setattr(assignment, name, value)


def check(values: dict[str, Any]) -> None:
    title = (values["title"] or "").strip()
    if not title or len(title) > 200:
        raise SettingsError("The title must be between 1 and 200 characters.")
    release, due, late = values["release_at"], values["due_at"], values["late_due_at"]
    if late is not None and due is None:
        raise SettingsError("A late due date needs a due date too.")
    if due is not None and late is not None and late <= due:
        raise SettingsError(f"The late due date ({_show(late)}) must be after the due date "
                            f"({_show(due)}).")
    if release is not None and due is not None and release >= due:
        raise SettingsError(f"The release date ({_show(release)}) must be before the due "
                            f"date ({_show(due)}).")
    penalty = values["late_penalty_per_day"]
    if not 0.0 <= float(penalty) <= 1.0:
        raise SettingsError(f"The late penalty is a fraction per day between 0 and 1 (0.1 is "
                            f"10% a day), not {float(penalty):g}.")
    limit = values["daily_limit"]
    if limit is not None and int(limit) < 1:
        raise SettingsError(f"The daily limit must be at least 1 submission (leave it empty "
                            f"for no limit), not {int(limit)}.")


def _show(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def find_course(db: Session, slug: str) -> Course:
    course = db.scalars(select(Course).where(Course.slug == slug)).first()
    if course is None:
        raise SettingsError(f"There is no course {slug!r}.")
    return course


def save_assignment(
    db: Session, course: Course, stored: StoredFolder, changes: Changes
) -> tuple[Assignment, bool]:
    """Create the course's assignment for ``stored`` or point the existing one at it.

    Returns (row, created). Refuses to replace a built-in assignment of the course. The
    caller commits."""
    spec = stored.spec
    row = db.scalars(select(Assignment).where(Assignment.course_id == course.id,
                                              Assignment.slug == spec.slug)).first()
    created = row is None
    if row is None:
        row = Assignment(course_id=course.id, slug=spec.slug, title=spec.title,
                         late_penalty_per_day=0.0, hidden_visible_after_due=True)
        row.release_at = row.due_at = row.late_due_at = row.daily_limit = None
    elif row.folder is None:
        raise SettingsError(f"{course.slug} already uses the built-in assignment "
                            f"{spec.slug!r}; choose another slug in spec.toml.")
    apply(row, changes)
    row.folder = str(stored.path)
    row.queue = "gpu" if spec.sandbox.gpu else "cpu"
    if created:
        db.add(row)
    return row, created
