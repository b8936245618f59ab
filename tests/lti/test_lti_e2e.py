"""The LTI 1.3 flow end to end in real Chromium against the test LMS (lti1p3platform):
login initiation -> authorization -> launch -> dlgrade session, for an instructor (course
made, link set up) and a student (lands on the assignment); then the roster sync (NRPS)
and grade passback (AGS) through the worker's sender, read back from the LMS."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from store.lti_models import LtiContext, LtiScore
from store.models import Course, Enrollment, utcnow
from store.users import create_user
from tests.browser.conftest import Steps
from tests.lti.conftest import Tool, add_assignment, grade, user_by_email
from tests.lti.lms import TestLms

pytestmark = pytest.mark.browser


def test_launch_roster_and_grade_passback(lms: TestLms, tool: Tool, browser: Any,
                                          tmp_path: Path) -> None:
    started = time.monotonic()
    with tool.db_factory() as db:  # the instructor already has a dlgrade staff account
        create_user(db, "teacher@uni.example", "pw-teacher", role="staff")
        db.commit()
    teacher = browser.new_context().new_page()
    steps = Steps(teacher, tmp_path / "shots", "lti")
    teacher.goto(f"{lms.url}/start/teacher/rl-1")
    teacher.wait_for_url(re.compile(r"/lti/links/\d+$"))
    assert "Set up an LMS link" in teacher.content()
    steps.shot("instructor-first-launch")
    with tool.db_factory() as db:
        course = db.scalars(select(Course).where(Course.slug == "dl101")).one()
        assert course.title == "Deep Learning 101"
        staff = user_by_email(db, "teacher@uni.example")
        assert db.scalar(select(Enrollment.role).where(Enrollment.user_id == staff.id)) == "staff"
        assignment = add_assignment(db, "dl101")
    teacher.reload()
    teacher.select_option("#assignment_id", str(assignment.id))
    teacher.click("main button[type=submit]")
    teacher.wait_for_url(re.compile(rf"/staff/assignments/{assignment.id}$"))
    steps.shot("instructor-dashboard")

    student = browser.new_context().new_page()
    student.goto(f"{lms.url}/start/alice/rl-1")
    student.wait_for_url(re.compile(rf"/assignments/{assignment.id}$"))
    assert "alice@uni.example" in student.content()
    assert "Homework 1" in student.content()
    Steps(student, tmp_path / "shots", "lti-student").shot("student-lands-on-assignment")
    launched = time.monotonic() - started

    with tool.db_factory() as db:
        alice = user_by_email(db, "alice@uni.example")
        assert alice.password_hash == "!unset"  # no password: only the LMS logs her in
    first = grade(tool.db_factory, assignment.id, alice.id,
                  [(6.0, 6.0, "visible"), (2.0, 4.0, "after_due_date")])
    passback = tool.passback()
    passback.run_pending()

    with tool.db_factory() as db:  # the instructor's launch asked for the roster
        bob = user_by_email(db, "bob@uni.example")
        assert db.scalar(select(Enrollment.role).where(Enrollment.user_id == bob.id)) == "student"
        assert db.query(Enrollment).filter_by(course_id=course.id).count() == 3  # not olga
        context = db.scalars(select(LtiContext)).one()
        assert context.synced_at is not None and context.sync_summary.startswith(
            "1 enrolled, 2 already there")
    item = next(iter(lms.lineitems.values()))
    assert (item["resourceLinkId"], item["label"], item["scoreMaximum"]) == \
        ("rl-1", "Homework 1", 10.0)
    # What the student sees: the hidden test's points are withheld, not posted.
    assert [(s.user_id, s.score, s.maximum) for s in lms.scores] == [("u-alice", 6.0, 10.0)]
    assert "4 more points are withheld" in lms.scores[0].comment

    passback.run_pending()
    assert len(lms.scores) == 1  # nothing changed: nothing posted again

    grade(tool.db_factory, assignment.id, alice.id,
          [(6.0, 6.0, "visible"), (1.0, 4.0, "after_due_date")], late_days=1)
    passback.run_pending()
    assert len(lms.scores) == 1  # a worse, late submission does not count: still 6

    with tool.db_factory() as db:  # the due date passes: the hidden test is revealed
        db.get(type(assignment), assignment.id).due_at = utcnow() - timedelta(hours=1)
        db.commit()
    tool.passback().run_pending()  # a fresh sender refreshes everything at once
    assert [(s.score, s.maximum) for s in lms.scores[1:]] == [(8.0, 10.0)]

    grade(tool.db_factory, assignment.id, alice.id,
          [(6.0, 6.0, "visible"), (4.0, 4.0, "after_due_date")], submission_id=first)
    passback.run_pending()  # a regrade is posted again
    assert [(s.score, s.maximum) for s in lms.scores[2:]] == [(10.0, 10.0)]
    with tool.db_factory() as db:
        row = db.scalars(select(LtiScore).where(LtiScore.user_id == alice.id)).one()
        assert (row.status, row.posted_score, row.version, row.posted_version) == \
            ("posted", 10.0, 3, 3)
    print(f"\nLTI launches (instructor + student, Chromium): {launched:.1f} s; "
          f"whole flow {time.monotonic() - started:.1f} s")
