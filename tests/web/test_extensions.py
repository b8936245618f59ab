"""web/extensions.py and how the rest honours it: effective dates, uploads within and
after an extension, late days, the visibility rule, and the staff form's errors."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Assignment, Extension, Submission
from tests.web.factories import AuthActions, Factory, World
from web.extensions import (
    Deadlines,
    ExtensionError,
    ExtensionForm,
    deadlines_for,
    extended_deadlines,
    grant,
    parse_when,
    revoke,
)
from web.uploads import UploadRejected, check_open, late_days
from web.visibility import student_may_see, submissions_close

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def form_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def extension(due: datetime, late: datetime | None = None) -> Extension:
    return Extension(due_at=due, late_due_at=late)


def test_extension_without_late_date_keeps_a_later_assignment_late_window() -> None:
    a = Assignment(due_at=NOW, late_due_at=NOW + 3 * DAY)
    assert extended_deadlines(a, extension(NOW + DAY)) == Deadlines(NOW + DAY, NOW + 3 * DAY, True)
    assert extended_deadlines(a, extension(NOW + 4 * DAY)) == Deadlines(NOW + 4 * DAY, None, True)
    assert extended_deadlines(a, extension(NOW + DAY, NOW + 9 * DAY)).late_due_at == NOW + 9 * DAY


def test_check_open_uses_the_students_dates() -> None:
    a = Assignment(title="CNN", due_at=NOW - DAY)
    with pytest.raises(UploadRejected, match="late submissions are not accepted"):
        check_open(a, NOW)
    check_open(a, NOW, Deadlines(NOW + DAY, None, True))  # within the extension
    with pytest.raises(UploadRejected, match="Your extended deadline .* passed"):
        check_open(a, NOW + 2 * DAY, Deadlines(NOW + DAY, None, True))
    with pytest.raises(UploadRejected, match="late submissions closed on Thu 12 Mar"):
        check_open(a, NOW + 3 * DAY, Deadlines(NOW + DAY, NOW + 2 * DAY, True))


def test_late_days_count_from_the_extended_due_date() -> None:
    a = Assignment(due_at=NOW - 5 * DAY)
    assert late_days(a, NOW) == 5
    assert late_days(a, NOW, Deadlines(NOW - DAY, NOW + DAY, True)) == 1
    assert late_days(a, NOW, Deadlines(NOW + DAY, None, True)) == 0


def test_visibility_waits_for_the_last_extended_student() -> None:
    a = Assignment(due_at=NOW - 2 * DAY, late_due_at=NOW - DAY, hidden_visible_after_due=True)
    assert submissions_close(a) == NOW - DAY
    assert student_may_see("after_due_date", a, NOW)
    a.extensions = [extension(NOW - DAY * 1.5), extension(NOW + DAY)]
    assert submissions_close(a) == NOW + DAY
    assert not student_may_see("after_due_date", a, NOW)
    assert not student_may_see("hidden", a, NOW)
    assert student_may_see("after_due_date", a, NOW + DAY)


def test_extension_within_the_late_window_keeps_it_as_the_close() -> None:
    a = Assignment(due_at=NOW - 2 * DAY, late_due_at=NOW + 2 * DAY)
    a.extensions = [extension(NOW)]  # no late date of its own: keeps the assignment's
    assert submissions_close(a) == NOW + 2 * DAY


@pytest.fixture
def late(make: Factory, world: World) -> World:
    """The assignment was due yesterday, without a late window."""
    world.assignment.due_at = datetime.now(UTC) - DAY
    make.db.commit()
    return world


def test_grant_edit_and_revoke(db: Session, late: World) -> None:
    due = late.assignment.due_at
    assert due is not None
    form = ExtensionForm(" Alice@Example.edu ", form_date(due + 3 * DAY), "", "flu")
    first = grant(db, late.assignment, form, late.staff, NOW)
    assert (first.user_id, first.reason) == (late.alice.id, "flu")
    assert first.granted_by_id == late.staff.id
    edited = grant(db, late.assignment, ExtensionForm("alice@example.edu", form_date(due + 5 * DAY),
                                                      form_date(due + 6 * DAY)), late.staff, NOW)
    assert edited.id == first.id
    dates = deadlines_for(db, late.assignment, late.alice)
    assert (dates.due_at, dates.late_due_at, dates.extended) == (
        edited.due_at, edited.late_due_at, True)
    assert dates.due_at is not None and dates.due_at - due > 4 * DAY
    assert not deadlines_for(db, late.assignment, late.bob).extended
    assert revoke(db, late.assignment, late.alice.id) is True
    assert revoke(db, late.assignment, late.alice.id) is False
    assert not deadlines_for(db, late.assignment, late.alice).extended


@pytest.mark.parametrize("email, due, late_due, message", [
    ("nobody@example.edu", 2, None, "No account has the e-mail address nobody@example.edu."),
    ("", 2, None, "Enter the e-mail address of the student."),
    ("outsider@example.edu", 2, None, "outsider@example.edu is not enrolled in dl101."),
    ("STAFF", 2, None, "is on the staff of dl101, not a student."),
    ("alice@example.edu", -1, None, "must be after the assignment's own"),
    ("alice@example.edu", 0, None, "must be after the assignment's own"),
    ("alice@example.edu", 3, 2, "The late due date (.*) must be after the new due date"),
    ("alice@example.edu", "tomorrow", None, "Enter the new due date as YYYY-MM-DD HH:MM in UTC"),
])
def test_bad_input_gets_one_precise_sentence(db: Session, make: Factory, late: World,
                                             email: str, due: int | str, late_due: int | None,
                                             message: str) -> None:
    make.user(email="outsider@example.edu")
    base = late.assignment.due_at
    assert base is not None
    when = due if isinstance(due, str) else form_date(base + due * DAY)
    when_late = "" if late_due is None else form_date(base + late_due * DAY)
    email = late.staff.email if email == "STAFF" else email
    with pytest.raises(ExtensionError, match=message):
        grant(db, late.assignment, ExtensionForm(email, when, when_late), late.staff, NOW)
    assert db.scalars(select(Extension)).all() == []


def test_no_due_date_nothing_to_extend(db: Session, make: Factory, world: World) -> None:
    open_ended = make.assignment(world.course, slug="open", title="Open", due_at=None)
    with pytest.raises(ExtensionError, match="Open has no due date"):
        grant(db, open_ended, ExtensionForm("alice@example.edu", "2030-01-01T00:00"),
              world.staff, NOW)


def post_upload(client: FlaskClient, auth: AuthActions, assignment: Assignment,
                content: bytes) -> int:
    form = {"file": (io.BytesIO(content), "handin.tar.gz"), "csrf_token": auth.token()}
    return client.post(f"/assignments/{assignment.id}/submissions", data=form,
                       content_type="multipart/form-data").status_code


def test_uploads_within_an_extension_are_accepted_and_late_after_it(
    client: FlaskClient, auth: AuthActions, db: Session, make: Factory, late: World,
    handin: bytes,
) -> None:
    now = datetime.now(UTC)
    db.add(Extension(assignment_id=late.assignment.id, user_id=late.alice.id,
                     due_at=now - DAY / 2, late_due_at=now + DAY))
    db.add(Extension(assignment_id=late.assignment.id, user_id=late.bob.id, due_at=now + DAY))
    db.commit()
    auth.login(late.alice.email)
    assert post_upload(client, auth, late.assignment, handin) == 302  # in her late window
    auth.logout()
    auth.login(late.bob.email)
    assert post_upload(client, auth, late.assignment, handin) == 302  # before his new due
    db.expire_all()
    rows = db.scalars(select(Submission).order_by(Submission.id)).all()
    assert [(r.user_id, r.late_days) for r in rows] == [(late.alice.id, 1), (late.bob.id, 0)]
    db.execute(Extension.__table__.update().values(due_at=now - DAY / 2, late_due_at=None))
    db.commit()
    page = client.post(f"/assignments/{late.assignment.id}/submissions",
                       data={"file": (io.BytesIO(handin), "h.tar.gz"), "csrf_token": auth.token()},
                       content_type="multipart/form-data")
    assert page.status_code == 403
    assert "Your extended deadline for MyTorch CNN passed" in page.get_data(as_text=True)


def test_the_student_sees_their_own_dates(client: FlaskClient, auth: AuthActions, db: Session,
                                          late: World) -> None:
    db.add(Extension(assignment_id=late.assignment.id, user_id=late.alice.id,
                     due_at=datetime(2031, 5, 6, 7, 8, tzinfo=UTC)))
    db.commit()
    auth.login(late.alice.email)
    page = client.get(f"/assignments/{late.assignment.id}").get_data(as_text=True)
    assert "Tue 06 May 2031, 07:08 UTC" in page and "your extension" in page
    auth.logout()
    auth.login(late.bob.email)
    assert "your extension" not in client.get(f"/assignments/{late.assignment.id}").get_data(
        as_text=True)


@pytest.mark.parametrize("text, expected", [
    ("2030-01-02T03:04", datetime(2030, 1, 2, 3, 4, tzinfo=UTC)),
    (" 2030-01-02 03:04 ", datetime(2030, 1, 2, 3, 4, tzinfo=UTC)),
    ("2030-01-02", datetime(2030, 1, 2, tzinfo=UTC)),
    ("2030-01-02T05:04+02:00", datetime(2030, 1, 2, 3, 4, tzinfo=UTC)),
])
def test_dates_read_as_the_assignment_settings_read_them(text: str, expected: datetime) -> None:
    assert parse_when(text, "new due date") == expected


@pytest.mark.parametrize("text", ["", "   ", "02/01/2030"])
def test_an_empty_or_unreadable_date_gets_the_forms_message(text: str) -> None:
    with pytest.raises(ExtensionError, match=r"Enter the new due date as YYYY-MM-DD HH:MM in UTC"):
        parse_when(text, "new due date")
