"""Issue 12.10: the open redirect after login, staff rights from each enrollment's own
role, server-side sessions that logout really ends, and the Content-Security-Policy."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from store.resets import issue_reset
from tests.web.factories import PASSWORD, AuthActions, Factory, World, csrf_token, gs_test
from web.auth import safe_next
from web.headers import POLICY

# --- open redirect -----------------------------------------------------------------------

ATTACKS = ("/%09/evil.example/", "/%0a/evil.example/", "/%0d%0a/evil.example", "/%5cevil.example",
           "//evil.example/", "https://evil.example/", "/\\evil.example", "%2F%2Fevil.example",
           "/%20/evil.example", "javascript:alert(1)")


@pytest.mark.parametrize("target", ATTACKS)
def test_login_never_redirects_off_site(client: FlaskClient, auth: AuthActions, world: World,
                                        target: str) -> None:
    token = auth.token()
    response = client.post(f"/login?next={target}", data={
        "email": world.alice.email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/"


def test_safe_next_refuses_control_characters(app: Flask) -> None:
    with app.test_request_context():
        assert safe_next("/assignments/3?x=1") == "/assignments/3?x=1"
        for target in ("/\t/evil.example/", "/\n/evil.example", "/\r\n/x", "/\x00/x",
                       "/ /evil.example", "/\\evil", "//evil", "http://evil", None, ""):
            assert safe_next(target) == "/", repr(target)


def test_staff_land_on_the_staff_dashboard(client: FlaskClient, auth: AuthActions,
                                           world: World) -> None:
    assert auth.login(world.staff.email).headers["Location"] == "/staff/"


# --- staff rights per course ---------------------------------------------------------------


@pytest.fixture
def two_courses(make: Factory, world: World) -> tuple[World, object]:
    """world.staff is staff of dl101 and a *student* of ml202, where bob has a graded
    submission and the assignment has a daily limit of 1."""
    other = make.course("ml202")
    make.enroll(world.staff, other, role="student")
    make.enroll(world.bob, other, role="student")
    second = make.assignment(other, daily_limit=1)
    make.graded(world.bob, second, [gs_test(1, "Secret test", 0, 5, visibility="hidden",
                                            output="the hidden input was 42")])
    return world, second


def test_staff_elsewhere_is_a_student_here(client: FlaskClient, auth: AuthActions,
                                           two_courses: tuple[World, object], db: Session) -> None:
    world, second = two_courses
    auth.login(world.staff.email)
    assert client.get(f"/staff/assignments/{world.assignment.id}").status_code == 200
    assert client.get(f"/staff/assignments/{second.id}").status_code == 404  # type: ignore[attr-defined]
    bob_sub = second.submissions[0].id  # type: ignore[attr-defined]
    assert client.get(f"/staff/submissions/{bob_sub}").status_code == 404
    assert client.get(f"/submissions/{bob_sub}").status_code == 404
    assert "ml202" not in client.get("/staff/").get_data(as_text=True)


def test_staff_elsewhere_has_a_students_daily_limit(client: FlaskClient, auth: AuthActions,
                                                    two_courses: tuple[World, object],
                                                    handin: bytes) -> None:
    import io

    world, second = two_courses
    auth.login(world.staff.email)
    url = f"/assignments/{second.id}/submissions"  # type: ignore[attr-defined]
    codes = []
    for _ in range(2):
        page = client.get(f"/assignments/{second.id}")  # type: ignore[attr-defined]
        data = {"file": (io.BytesIO(handin), "handin.tar.gz"),
                "csrf_token": csrf_token(page.get_data(as_text=True))}
        codes.append(client.post(url, data=data, content_type="multipart/form-data").status_code)
    assert codes == [302, 429]


def test_api_staff_rights_per_course(client: FlaskClient, make: Factory,
                                     two_courses: tuple[World, object]) -> None:
    world, second = two_courses
    headers = {"Authorization": f"Bearer {make.token(world.staff)}"}
    own = client.get("/api/v1/assignments/mytorch-cnn/scores?course=dl101", headers=headers)
    assert own.status_code == 200
    other = client.get("/api/v1/assignments/mytorch-cnn/scores?course=ml202", headers=headers)
    assert other.status_code == 404
    bob_sub = second.submissions[0].id  # type: ignore[attr-defined]
    assert client.get(f"/api/v1/submissions/{bob_sub}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/submissions/{bob_sub}/regrade",
                       headers=headers).status_code == 404


def test_a_ta_enrolled_as_staff_gets_staff_rights(client: FlaskClient, auth: AuthActions,
                                                  make: Factory, world: World) -> None:
    ta = make.user(email="ta@example.edu")  # account role student
    make.enroll(ta, world.course, role="staff")
    auth.login(ta.email)
    assert client.get(f"/staff/assignments/{world.assignment.id}").status_code == 200


# --- server-side sessions ------------------------------------------------------------------


def test_a_copied_cookie_is_dead_after_logout(app: Flask, auth: AuthActions,
                                              world: World) -> None:
    client = auth.client
    auth.login(world.alice.email)
    cookie = client.get_cookie("session")
    assert cookie is not None and client.get("/").status_code == 200
    stolen = cookie.value
    auth.logout()
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/").status_code == 302  # to the login page


def test_password_change_ends_the_other_sessions(app: Flask, world: World) -> None:
    first, second = AuthActions(app.test_client()), AuthActions(app.test_client())
    first.login(world.alice.email)
    second.login(world.alice.email)
    token = csrf_token(first.client.get("/settings").get_data(as_text=True))
    response = first.client.post("/settings/password", data={
        "current": PASSWORD, "password": "a new long password", "repeat": "a new long password",
        "csrf_token": token})
    assert response.status_code == 302
    assert first.client.get("/").status_code == 200
    assert second.client.get("/").status_code == 302


def test_log_out_everywhere_else(app: Flask, world: World) -> None:
    first, second = AuthActions(app.test_client()), AuthActions(app.test_client())
    first.login(world.alice.email)
    second.login(world.alice.email)
    page = first.client.get("/settings").get_data(as_text=True)
    assert page.count("<tr><td>") >= 2 and "this browser" in page
    first.client.post("/settings/sessions/end-others", data={"csrf_token": csrf_token(page)})
    assert first.client.get("/").status_code == 200
    assert second.client.get("/").status_code == 302


def test_a_reset_link_ends_every_session(app: Flask, db: Session, world: World) -> None:
    browser = AuthActions(app.test_client())
    browser.login(world.alice.email)
    raw = issue_reset(db, world.alice)
    db.commit()
    other = app.test_client()
    form = other.get(f"/password/reset/{raw}").get_data(as_text=True)
    assert world.alice.email in form
    response = other.post(f"/password/reset/{raw}", data={
        "password": "brand new password", "repeat": "brand new password",
        "csrf_token": csrf_token(form)})
    assert response.status_code == 302
    assert browser.client.get("/").status_code == 302
    assert other.get(f"/password/reset/{raw}").status_code == 404  # single use
    assert AuthActions(app.test_client()).login(world.alice.email,
                                                "brand new password").status_code == 302


# --- Content-Security-Policy --------------------------------------------------------------


def test_every_response_carries_the_policy(client: FlaskClient, auth: AuthActions,
                                           world: World) -> None:
    urls = ["/login", "/nowhere", "/api/v1/openapi.json", "/static/style.css"]
    for url in urls:
        response = client.get(url)
        response.close()  # the static file's stream
        assert response.headers.get("Content-Security-Policy") == POLICY, url
    auth.login(world.alice.email)
    for url in ("/", f"/assignments/{world.assignment.id}", "/settings"):
        response = client.get(url)
        assert response.headers["Content-Security-Policy"] == POLICY, url
        assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in POLICY and "unsafe-inline" not in POLICY
    assert "frame-ancestors 'none'" in POLICY
