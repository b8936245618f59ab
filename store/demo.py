"""The demo course of the embedded mode: two accounts and every built-in assignment.

``seed_demo`` is idempotent: rows that exist are kept. The accounts get random
passwords, remembered in ``<data_dir>/demo-accounts.json`` (mode 0600) so that a
restart prints the same ones; the caller prints them.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from grader.spec import builtin_assignments, load_spec
from store.models import Assignment, Course, Enrollment, User, utcnow
from store.users import create_user, find_user, set_password

COURSE_SLUG = "demo-101"
COURSE_TITLE = "Demo 101: deep learning from scratch"
STAFF_EMAIL = "staff@example.org"
STUDENT_EMAIL = "student@example.org"
CREDENTIALS_FILE = "demo-accounts.json"


@dataclass(frozen=True)
class DemoAccounts:
    staff_email: str
    staff_password: str
    student_email: str
    student_password: str


def seed_demo(db: Session, data_dir: Path) -> DemoAccounts:
    """Create (or complete) the demo course and its accounts; commits."""
    course = _course(db)
    accounts = _remembered(data_dir) or DemoAccounts(
        STAFF_EMAIL, secrets.token_urlsafe(9), STUDENT_EMAIL, secrets.token_urlsafe(9)
    )
    staff = _account(db, accounts.staff_email, accounts.staff_password, "staff", "Demo Staff")
    student = _account(db, accounts.student_email, accounts.student_password, "student",
                       "Demo Student")
    _enroll(db, staff, course, "staff")
    _enroll(db, student, course, "student")
    _assignments(db, course)
    db.commit()
    _remember(data_dir, accounts)
    return accounts


def _course(db: Session) -> Course:
    course = db.scalars(select(Course).where(Course.slug == COURSE_SLUG)).first()
    if course is None:
        course = Course(slug=COURSE_SLUG, title=COURSE_TITLE)
        db.add(course)
        db.flush()
    return course


def _account(db: Session, email: str, password: str, role: str, name: str) -> User:
    user = find_user(db, email)
    if user is None:
        return create_user(db, email, password, role=role, name=name)
    if not check_password_hash(user.password_hash, password):
        set_password(user, password)
    return user


def _enroll(db: Session, user: User, course: Course, role: str) -> None:
    found = db.scalars(
        select(Enrollment).where(Enrollment.user_id == user.id, Enrollment.course_id == course.id)
    ).first()
    if found is None:
        db.add(Enrollment(user_id=user.id, course_id=course.id, role=role))
        db.flush()


def _assignments(db: Session, course: Course) -> None:
    """Every built-in assignment, open now, due in 7 days (late until 9, -10 %/day)."""
    existing = set(db.scalars(select(Assignment.slug).where(Assignment.course_id == course.id)))
    now = utcnow().replace(microsecond=0)
    for slug, folder in builtin_assignments().items():
        if slug in existing:
            continue
        spec = load_spec(folder)
        db.add(Assignment(
            course_id=course.id, slug=slug, title=spec.title, folder=None,
            release_at=now, due_at=now + timedelta(days=7), late_due_at=now + timedelta(days=9),
            late_penalty_per_day=0.10, daily_limit=20,
            queue="gpu" if spec.sandbox.gpu else "cpu",
        ))
    db.flush()


def _remembered(data_dir: Path) -> DemoAccounts | None:
    path = data_dir / CREDENTIALS_FILE
    try:
        return DemoAccounts(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _remember(data_dir: Path, accounts: DemoAccounts) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / CREDENTIALS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(accounts), out)
