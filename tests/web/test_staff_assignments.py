"""Staff pages to create assignments from archives and edit their settings
(web/staff_assignments.py): staff only, own courses only, CSRF, errors on the form."""

from __future__ import annotations

import html
import io
import os
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Assignment
from tests.tiny_assignment import write_tiny
from tests.web.factories import AuthActions, Factory, World, big_upload


@pytest.fixture
def staff(auth: AuthActions, world: World) -> World:
    auth.login(world.staff.email)
    return world


@pytest.fixture
def archive(tmp_path: Path) -> bytes:
    folder = write_tiny(tmp_path / "tiny-hw")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname="tiny-hw")
    return buffer.getvalue()


def create(client: FlaskClient, auth: AuthActions, content: bytes, course: str = "dl101",
           name: str = "tiny.tar.gz", **fields: str) -> Any:
    form: dict[str, Any] = {"csrf_token": auth.token(), "course": course,
                            "file": (io.BytesIO(content), name), "late_penalty": "0",
                            "hidden_visible_after_due": "on", **fields}
    return client.post("/staff/assignments/new", data=form, content_type="multipart/form-data")


def shown_error(response: Any) -> str:
    text = response.get_data(as_text=True)
    start = text.index('role="alert"><pre>') + len('role="alert"><pre>')
    return html.unescape(text[start:text.index("</pre>", start)])


def test_the_index_links_to_the_new_page(client: FlaskClient, staff: World) -> None:
    page = client.get("/staff/").get_data(as_text=True)
    assert "/staff/assignments/new" in page
    assert f"/staff/assignments/{staff.assignment.id}/settings" in page
    form = client.get("/staff/assignments/new").get_data(as_text=True)
    assert 'name="csrf_token"' in form and '<option value="dl101"' in form


def test_create_from_an_archive(client: FlaskClient, auth: AuthActions, staff: World,
                                archive: bytes, db: Session, tmp_path: Path) -> None:
    response = create(client, auth, archive, due_at="2030-03-01T23:59", daily_limit="3")
    assert response.status_code == 302, shown_error(response)
    row = db.scalars(select(Assignment).where(Assignment.slug == "tiny-hw")).one()
    assert response.headers["Location"].endswith(f"/staff/assignments/{row.id}/settings")
    assert (row.title, row.due_at, row.daily_limit, row.hidden_visible_after_due) == (
        "Tiny homework", datetime(2030, 3, 1, 23, 59, tzinfo=UTC), 3, True)
    assert row.folder is not None
    assert Path(row.folder).parent == tmp_path / "data/assignments/dl101/tiny-hw"
    page = client.get(f"/staff/assignments/{row.id}/settings").get_data(as_text=True)
    assert "Created tiny-hw in dl101 (15 points)." in page
    assert 'value="2030-03-01T23:59"' in page


@pytest.mark.parametrize("fields, message", [
    ({"course": "cs999"}, "Choose one of the courses you teach."),
    ({"name": "tiny.rar"}, "tiny.rar is not a .tar, .tar.gz or .zip archive."),
    ({"due_at": "2030-03-01T12:00", "late_due_at": "2030-03-01T11:00"},
     "The late due date (2030-03-01 11:00 UTC) must be after the due date (2030-03-01 12:00 UTC)."),
    ({"late_penalty": "ten"}, "The late penalty must be a number such as 0.1."),
    ({"daily_limit": "2.5"}, "The daily limit must be a whole number (or empty for no limit)."),
    ({"daily_limit": "0"}, "The daily limit must be at least 1 submission (leave it empty for "
                           "no limit), not 0."),
])
def test_form_errors_are_shown_on_the_form(
    client: FlaskClient, auth: AuthActions, staff: World, archive: bytes, db: Session,
    fields: dict[str, str], message: str,
) -> None:
    response = create(client, auth, archive, **fields)
    assert response.status_code == 400
    assert shown_error(response) == message
    assert db.scalars(select(Assignment).where(Assignment.slug == "tiny-hw")).first() is None


def test_a_broken_folder_lists_its_problems(client: FlaskClient, auth: AuthActions,
                                            staff: World, tmp_path: Path) -> None:
    folder = write_tiny(tmp_path / "broken", checks=None)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname="broken")
    response = create(client, auth, buffer.getvalue())
    assert response.status_code == 400
    assert shown_error(response).splitlines() == [
        "Test 'The answer' uses check 'tiny.answer', which is neither built in nor defined "
        "in checks.py.",
        "Test 'Twice the answer' uses check 'tiny.double', which is neither built in nor "
        "defined in checks.py.",
    ]


def test_a_second_create_of_the_same_slug_is_refused(
    client: FlaskClient, auth: AuthActions, staff: World, archive: bytes
) -> None:
    assert create(client, auth, archive).status_code == 302
    response = create(client, auth, archive)
    assert response.status_code == 400
    assert shown_error(response) == ("dl101 already has an assignment 'tiny-hw'; upload the new "
                                     "version from its settings page.")


def test_edit_settings_and_upload_a_new_version(
    client: FlaskClient, auth: AuthActions, staff: World, archive: bytes, db: Session,
    tmp_path: Path,
) -> None:
    create(client, auth, archive)
    row = db.scalars(select(Assignment).where(Assignment.slug == "tiny-hw")).one()
    first = row.folder
    folder = write_tiny(tmp_path / "v2" / "tiny-hw")
    (folder / "solution/answer.py").write_text("VALUE = 42\ndef double(x):\n    return x + x\n")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname="tiny-hw")
    form = {"csrf_token": auth.token(), "title": "Renamed", "release_at": "2030-01-01T00:00",
            "due_at": "2030-02-01T00:00", "late_due_at": "2030-02-03T00:00",
            "late_penalty": "0.2", "daily_limit": "",
            "file": (io.BytesIO(buffer.getvalue()), "v2.tar.gz")}
    response = client.post(f"/staff/assignments/{row.id}/settings", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 302, shown_error(response)
    db.expire_all()
    row = db.get(Assignment, row.id)
    assert row is not None
    assert (row.title, row.late_penalty_per_day, row.daily_limit,
            row.hidden_visible_after_due) == ("Renamed", 0.2, None, False)
    assert row.late_due_at == datetime(2030, 2, 3, tzinfo=UTC)
    assert row.folder != first and first is not None and Path(first).is_dir()


def test_a_new_version_must_keep_the_slug(
    client: FlaskClient, auth: AuthActions, staff: World, archive: bytes, db: Session,
    tmp_path: Path,
) -> None:
    create(client, auth, archive)
    row = db.scalars(select(Assignment).where(Assignment.slug == "tiny-hw")).one()
    other = write_tiny(tmp_path / "other")
    (other / "spec.toml").write_text((other / "spec.toml").read_text().replace(
        '"tiny-hw"', '"other-hw"'))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(other, arcname="other")
    form = {"csrf_token": auth.token(), "late_penalty": "0",
            "file": (io.BytesIO(buffer.getvalue()), "other.tar.gz")}
    response = client.post(f"/staff/assignments/{row.id}/settings", data=form,
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert shown_error(response) == (
        "spec.toml says slug = 'other-hw', but this is the assignment 'tiny-hw'; upload the "
        "folder of 'tiny-hw', or create a new assignment for this one.")


def test_settings_of_a_builtin(client: FlaskClient, auth: AuthActions, staff: World,
                               db: Session) -> None:
    url = f"/staff/assignments/{staff.assignment.id}/settings"
    assert "built-in assignment" in client.get(url).get_data(as_text=True)
    response = client.post(url, data={"csrf_token": auth.token(), "late_penalty": "0.05",
                                      "daily_limit": "10", "hidden_visible_after_due": "on"})
    assert response.status_code == 302
    db.expire_all()
    row = db.get(Assignment, staff.assignment.id)
    assert row is not None and (row.late_penalty_per_day, row.daily_limit) == (0.05, 10)
    assert row.due_at is None  # the form sent no due date: none


def test_students_are_refused(client: FlaskClient, auth: AuthActions, world: World) -> None:
    auth.login(world.alice.email)
    assert client.get("/staff/assignments/new").status_code == 403
    assert client.get(f"/staff/assignments/{world.assignment.id}/settings").status_code == 403


def test_staff_of_another_course_cannot_reach_it(
    client: FlaskClient, auth: AuthActions, world: World, make: Factory, archive: bytes
) -> None:
    other = make.user("staff", email="other@example.edu")
    make.enroll(other, make.course("cs999"))
    auth.login(other.email)
    assert client.get(f"/staff/assignments/{world.assignment.id}/settings").status_code == 404
    response = create(client, auth, archive, course="dl101")
    assert response.status_code == 400
    assert shown_error(response) == "Choose one of the courses you teach."


def test_forms_need_csrf(client: FlaskClient, staff: World, archive: bytes) -> None:
    form = {"course": "dl101", "file": (io.BytesIO(archive), "tiny.tar.gz")}
    assert client.post("/staff/assignments/new", data=form,
                       content_type="multipart/form-data").status_code == 400
    url = f"/staff/assignments/{staff.assignment.id}/settings"
    assert client.post(url, data={"late_penalty": "0.5"}).status_code == 400


def test_an_archive_larger_than_a_handin_upload_is_accepted(
    client: FlaskClient, auth: AuthActions, staff: World, tmp_path: Path, db: Session,
    app: Any,
) -> None:
    folder = write_tiny(tmp_path / "big" / "tiny-hw")
    (folder / "public_data").mkdir()
    size = app.extensions["dlgrade"].settings.max_upload_bytes + (2 << 20)
    (folder / "public_data/weights.bin").write_bytes(os.urandom(size))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname="tiny-hw")
    fields = {"csrf_token": auth.token(), "course": "dl101", "late_penalty": "0"}
    with big_upload(client, "/staff/assignments/new", buffer.getvalue(), fields) as response:
        assert response.status_code == 302, response.status_code
    row = db.scalars(select(Assignment).where(Assignment.slug == "tiny-hw")).one()
    assert row.folder is not None
    assert (Path(row.folder) / "public_data/weights.bin").stat().st_size == size


def test_only_staff_may_send_folder_sized_bodies(
    client: FlaskClient, auth: AuthActions, world: World, app: Any,
) -> None:
    """The larger limit is not for students or anonymous clients: the request is cut off
    at the handin limit before the form (and the CSRF token in it) is even read."""
    size = app.extensions["dlgrade"].settings.max_upload_bytes + (2 << 20)
    body = os.urandom(size)
    with big_upload(client, "/staff/assignments/new", body, {}) as response:
        assert response.status_code == 413
    auth.login(world.alice.email)
    with big_upload(client, "/staff/assignments/new", body, {"csrf_token": auth.token()}
                    ) as response:
        assert response.status_code == 413


MISSPELT = '''
[[tests]]
name = "Course tests"
check = "course.pytest"
points = 1
params = { file = "test_a.py", selct = ["test_x"] }
'''


def test_a_misspelt_param_is_named_on_the_form(client: FlaskClient, auth: AuthActions,
                                               staff: World, tmp_path: Path) -> None:
    from tests.tiny_assignment import SPEC

    folder = write_tiny(tmp_path / "misspelt", spec=SPEC + MISSPELT)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname="misspelt")
    response = create(client, auth, buffer.getvalue())
    assert response.status_code == 400
    assert shown_error(response).splitlines() == [
        'spec.toml: tests.2 ("Course tests", check "course.pytest"): params.selct is not a '
        "parameter of this check (did you mean select?); it takes: args, file, folder, "
        "modules, partial, plugins, run_timeout_s, select",
    ]
