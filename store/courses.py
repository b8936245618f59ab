"""Courses and their rosters: create a course, enroll people with a role per course,
import a roster from CSV, list and remove members.

``create_course`` is the one way a course is made, from the web (course settings) and
from ``dlgrade courses add``. Roster CSVs need an ``email`` column (``e-mail``,
``email address`` and ``login`` are understood too) and may have ``name`` and ``role``
(``student`` or ``staff``; ``ta``, ``instructor`` and ``teacher`` mean staff). Accounts
that do not exist yet are created with an unusable password: their owners set one
through a reset link. Functions flush; the caller commits.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from store.models import Course, Enrollment, User
from store.users import find_user, normalise_email

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
COURSE_ROLES = ("student", "staff")
ROLE_WORDS = {"student": "student", "learner": "student", "staff": "staff", "ta": "staff",
              "instructor": "staff", "teacher": "staff", "teachingassistant": "staff"}
EMAIL_HEADERS = ("email", "e-mail", "email address", "login", "sis login id")
MAX_ROSTER_LINES = 5000
# Matches no password (werkzeug refuses to parse it): the owner sets one by a reset link.
UNUSABLE_PASSWORD = "!unset"


class CourseError(ValueError):
    """The course or roster change cannot be made as asked; the message says why."""


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CourseError(f"{name!r} is not a time zone name such as Europe/Paris or "
                          "America/New_York.") from None
    return name


def find_course(db: Session, slug: str) -> Course | None:
    return db.scalars(select(Course).where(Course.slug == slug)).first()


def create_course(db: Session, slug: str, title: str, timezone: str = "UTC",
                  owner: User | None = None) -> Course:
    """A new course (``owner``, if given, enrolled as its staff)."""
    slug = slug.strip()
    if not SLUG.match(slug):
        raise CourseError(f"{slug!r} is not a course slug: lower-case letters, digits and "
                          "dashes, starting with a letter or digit, at most 63.")
    if find_course(db, slug) is not None:
        raise CourseError(f"there is already a course {slug!r}.")
    if not title.strip():
        raise CourseError("a course needs a title.")
    course = Course(slug=slug, title=title.strip()[:200], timezone=check_timezone(timezone))
    db.add(course)
    db.flush()
    if owner is not None:
        enroll(db, owner, course, "staff")
    return course


def update_course(course: Course, title: str, timezone: str) -> None:
    if not title.strip():
        raise CourseError("a course needs a title.")
    course.title = title.strip()[:200]
    course.timezone = check_timezone(timezone.strip() or "UTC")


def enroll(db: Session, user: User, course: Course, role: str = "student") -> Enrollment:
    """Enroll ``user`` in ``course`` as ``role``, or change their role there."""
    if role not in COURSE_ROLES:
        raise CourseError(f"a course role is student or staff, not {role!r}.")
    found = db.scalars(select(Enrollment).where(Enrollment.user_id == user.id,
                                                Enrollment.course_id == course.id)).first()
    if found is None:
        found = Enrollment(user_id=user.id, course_id=course.id, role=role)
        db.add(found)
    else:
        found.role = role
    db.flush()
    return found


def unenroll(db: Session, course: Course, user_id: int) -> bool:
    """Remove the user from the course (their account and submissions stay)."""
    found = db.scalars(select(Enrollment).where(Enrollment.user_id == user_id,
                                                Enrollment.course_id == course.id)).first()
    if found is None:
        return False
    db.delete(found)
    db.flush()
    return True


def members(db: Session, course: Course) -> Sequence[Enrollment]:
    """The course's enrollments with their users, staff first, then by e-mail."""
    query = (select(Enrollment).join(Enrollment.user).where(Enrollment.course_id == course.id)
             .options(joinedload(Enrollment.user))
             .order_by(Enrollment.role, User.email))  # staff before student
    return db.scalars(query).all()


@dataclass(frozen=True)
class RosterLine:
    email: str
    name: str = ""
    role: str = "student"


@dataclass
class RosterReport:
    """What an import did; ``created`` are the new accounts (they need a password link)."""

    created: list[User] = field(default_factory=list)
    enrolled: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

    def sentence(self) -> str:
        parts = [f"{len(self.enrolled)} enrolled", f"{len(self.created)} new accounts",
                 f"{len(self.changed)} roles changed", f"{self.unchanged} already there"]
        if self.problems:
            parts.append(f"{len(self.problems)} lines skipped")
        return ", ".join(parts) + "."


def parse_roster(text: str) -> tuple[list[RosterLine], list[str]]:
    """The lines of a roster CSV, and a sentence for each line that cannot be used."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [cell.strip().lower() for cell in next(reader, [])]
    email_at = next((header.index(h) for h in EMAIL_HEADERS if h in header), None)
    if email_at is None:
        raise CourseError("the roster needs an 'email' column (its first line names the "
                          "columns: email, name, role).")
    name_at = header.index("name") if "name" in header else None
    role_at = header.index("role") if "role" in header else None
    lines: list[RosterLine] = []
    problems: list[str] = []
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(lines) >= MAX_ROSTER_LINES:
            raise CourseError(f"a roster can have at most {MAX_ROSTER_LINES} lines.")
        email = normalise_email(_cell(row, email_at))
        role_given = _cell(row, role_at)
        role_word = re.sub(r"[^a-z]", "", role_given.lower()) or "student"
        if "@" not in email:
            problems.append(f"line {number}: {email or 'an empty cell'} is not an e-mail address")
        elif role_word not in ROLE_WORDS:
            problems.append(f"line {number}: the role {role_given!r} is not student or staff")
        else:
            lines.append(RosterLine(email, _cell(row, name_at)[:200], ROLE_WORDS[role_word]))
    return lines, problems


def _cell(row: list[str], at: int | None) -> str:
    return row[at].strip() if at is not None and at < len(row) else ""


def import_roster(db: Session, course: Course, lines: Sequence[RosterLine]) -> RosterReport:
    """Enroll every line (creating missing accounts). A role is never lowered from staff
    to student by an import (a student list must not demote the TAs); change it on the
    people page instead."""
    report = RosterReport()
    current = {e.user_id: e for e in members(db, course)}
    for line in lines:
        user = find_user(db, line.email)
        if user is None:
            user = User(email=line.email, name=line.name, role="student",
                        password_hash=UNUSABLE_PASSWORD)
            db.add(user)
            db.flush()
            report.created.append(user)
        elif line.name and not user.name:
            user.name = line.name
        existing = current.get(user.id)
        if existing is None:
            current[user.id] = enroll(db, user, course, line.role)
            report.enrolled.append(user.email)
        elif existing.role != line.role and line.role == "staff":
            existing.role = "staff"
            report.changed.append(user.email)
        else:
            report.unchanged += 1
    db.flush()
    return report
