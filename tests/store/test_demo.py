"""store/demo.py: the embedded mode's demo course."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from grader.spec import builtin_assignments
from store.db import SessionFactory
from store.demo import CREDENTIALS_FILE, seed_demo
from store.models import Assignment, Course, Enrollment, User, utcnow
from store.users import authenticate


def test_the_demo_course_has_every_builtin_assignment_open(
    sqlite_factory: SessionFactory, tmp_path: Path
) -> None:
    with sqlite_factory() as db:
        accounts = seed_demo(db, tmp_path)
        staff = authenticate(db, accounts.staff_email, accounts.staff_password)
        student = authenticate(db, accounts.student_email, accounts.student_password)
        assert staff is not None and staff.role == "staff"
        assert student is not None and student.role == "student"
        course = db.scalars(select(Course)).one()
        assert course.slug == "demo-101"
        roles = {e.user_id: e.role for e in db.scalars(select(Enrollment))}
        assert roles == {staff.id: "staff", student.id: "student"}
        assignments = db.scalars(select(Assignment)).all()
        assert {a.slug for a in assignments} == set(builtin_assignments())
        now = utcnow()
        for assignment in assignments:
            assert assignment.release_at is not None and assignment.release_at <= now
            assert assignment.due_at is not None and assignment.late_due_at is not None
            assert abs(assignment.due_at - now - timedelta(days=7)) < timedelta(minutes=1)
            assert assignment.late_due_at - assignment.due_at == timedelta(days=2)
            assert (assignment.late_penalty_per_day, assignment.daily_limit) == (0.1, 20)
            assert assignment.queue in ("cpu", "gpu")


def test_seeding_twice_changes_nothing_and_keeps_the_passwords(
    db_factory: SessionFactory, tmp_path: Path
) -> None:
    with db_factory() as db:
        first = seed_demo(db, tmp_path)
    with db_factory() as db:
        second = seed_demo(db, tmp_path)
        assert second == first
        assert authenticate(db, second.student_email, second.student_password) is not None
        counts = [db.scalar(select(func.count()).select_from(t))
                  for t in (User, Course, Enrollment, Assignment)]
        assert counts == [2, 1, 2, len(builtin_assignments())]
    mode = stat.S_IMODE((tmp_path / CREDENTIALS_FILE).stat().st_mode)
    assert mode == 0o600


def test_fresh_passwords_when_the_remembered_ones_are_lost(
    sqlite_factory: SessionFactory, tmp_path: Path
) -> None:
    with sqlite_factory() as db:
        first = seed_demo(db, tmp_path)
        (tmp_path / CREDENTIALS_FILE).unlink()
        second = seed_demo(db, tmp_path)
        assert second.staff_password != first.staff_password
        assert authenticate(db, second.staff_email, second.staff_password) is not None
        assert authenticate(db, first.staff_email, first.staff_password) is None
