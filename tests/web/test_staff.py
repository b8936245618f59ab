"""Staff pages (web/staff.py) and regrading (web/regrade.py)."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Submission, TestScore
from tests.services import Recorder
from tests.web.factories import AuthActions, Factory, World, gs_test
from web.regrade import CannotRegrade, requeue


@pytest.fixture
def staff(auth: AuthActions, world: World) -> World:
    auth.login(world.staff.email)
    return world


def test_dashboard_lists_every_submission(client: FlaskClient, make: Factory, staff: World) -> None:
    make.graded(staff.alice, staff.assignment, [gs_test(1, "t", 7, 10)])
    make.submission(staff.bob, staff.assignment, status="running", attempt=1)
    index = client.get("/staff/").get_data(as_text=True)
    assert f"/staff/assignments/{staff.assignment.id}" in index
    page = client.get(f"/staff/assignments/{staff.assignment.id}").get_data(as_text=True)
    assert staff.alice.email in page and staff.bob.email in page
    assert "7 / 10" in page and "running" in page


def test_staff_see_hidden_tests_and_details(client: FlaskClient, make: Factory,
                                            staff: World) -> None:
    tests = [gs_test(1, "public", 5, 5),
             gs_test(2, "secret", 0, 5, "hidden", "mismatch", staff_detail="Traceback (x)")]
    done = make.graded(staff.alice, staff.assignment, tests, staff_detail="worker log <here>")
    page = client.get(f"/staff/submissions/{done.id}").get_data(as_text=True)
    assert "secret" in page and "Traceback (x)" in page
    assert "worker log &lt;here&gt;" in page
    assert "5 / 10" in page


def test_archive_download(client: FlaskClient, auth: AuthActions, staff: World,
                          handin: bytes, db: Session) -> None:
    auth.logout()
    auth.login(staff.alice.email)
    form = {"file": (io.BytesIO(handin), "handin.tar.gz"), "csrf_token": auth.token()}
    client.post(f"/assignments/{staff.assignment.id}/submissions", data=form,
                content_type="multipart/form-data")
    [row] = db.scalars(select(Submission)).all()
    assert client.get(f"/staff/submissions/{row.id}/archive").status_code == 403
    auth.logout()
    auth.login(staff.staff.email)
    with client.get(f"/staff/submissions/{row.id}/archive") as response:
        assert response.status_code == 200
        assert response.data == handin
        assert "handin.tar.gz" in response.headers["Content-Disposition"]


def test_regrade_requeues_and_enqueues(client: FlaskClient, auth: AuthActions, make: Factory,
                                       staff: World, db: Session,
                                       enqueuer: Recorder) -> None:
    done = make.graded(staff.alice, staff.assignment, [gs_test(1, "t", 3, 10)], attempt=2,
                       error=None)
    response = client.post(f"/staff/submissions/{done.id}/regrade",
                           data={"csrf_token": auth.token()})
    assert response.status_code == 302
    db.expire_all()
    row = db.get(Submission, done.id)
    assert row is not None
    assert (row.status, row.attempt, row.score, row.results) == ("queued", 0, None, None)
    assert db.scalars(select(TestScore).where(TestScore.submission_id == done.id)).all() == []
    assert enqueuer.calls == [(done.id, "cpu")]


def test_regrade_needs_csrf(client: FlaskClient, make: Factory, staff: World) -> None:
    done = make.graded(staff.alice, staff.assignment, [gs_test(1, "t", 3, 10)])
    assert client.post(f"/staff/submissions/{done.id}/regrade").status_code == 400


def test_students_cannot_regrade(client: FlaskClient, auth: AuthActions, make: Factory,
                                 world: World) -> None:
    done = make.graded(world.alice, world.assignment, [gs_test(1, "t", 3, 10)])
    auth.login(world.alice.email)
    response = client.post(f"/staff/submissions/{done.id}/regrade",
                           data={"csrf_token": auth.token()})
    assert response.status_code == 403


def test_running_submission_is_not_regraded(make: Factory, world: World) -> None:
    running = make.submission(world.alice, world.assignment, status="running", attempt=1)
    with pytest.raises(CannotRegrade):
        requeue(make.db, running)
    assert running.status == "running"


def test_staff_of_another_course_get_404(client: FlaskClient, auth: AuthActions,
                                         make: Factory, world: World) -> None:
    outsider = make.user("staff")
    make.enroll(outsider, make.course("other"))
    done = make.graded(world.alice, world.assignment, [gs_test(1, "t", 3, 10)])
    auth.login(outsider.email)
    assert client.get(f"/staff/submissions/{done.id}").status_code == 404
    assert client.get(f"/staff/assignments/{world.assignment.id}").status_code == 404
