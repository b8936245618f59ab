"""Login, logout, CSRF and the role checks of web/auth.py and web/csrf.py."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.web.factories import PASSWORD, AuthActions, World
from web.auth import BAD_LOGIN, safe_next
from web.csrf import REJECTED


def test_login_page_renders(client: FlaskClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.get_data(as_text=True)


def test_pages_redirect_to_login(client: FlaskClient, world: World) -> None:
    response = client.get(f"/assignments/{world.assignment.id}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_then_logout(client: FlaskClient, auth: AuthActions, world: World) -> None:
    response = auth.login(world.alice.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "MyTorch CNN" in client.get("/").get_data(as_text=True)

    response = auth.logout()
    assert response.status_code == 302
    assert client.get("/").status_code == 302  # back to the login page


def test_login_follows_next(client: FlaskClient, auth: AuthActions, world: World) -> None:
    token = auth.token()
    response = client.post(f"/login?next=/assignments/{world.assignment.id}",
                           data={"email": world.alice.email, "password": PASSWORD,
                                 "csrf_token": token})
    assert response.headers["Location"] == f"/assignments/{world.assignment.id}"


def test_bad_password(client: FlaskClient, auth: AuthActions, world: World) -> None:
    response = auth.login(world.alice.email, "wrong")
    assert response.status_code == 401
    assert BAD_LOGIN in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_unknown_email_says_the_same(auth: AuthActions, world: World) -> None:
    response = auth.login("nobody@example.edu")
    assert response.status_code == 401
    assert BAD_LOGIN in response.get_data(as_text=True)


def test_post_without_csrf_token_is_rejected(client: FlaskClient, world: World) -> None:
    client.get("/login")
    response = client.post("/login", data={"email": world.alice.email, "password": PASSWORD})
    assert response.status_code == 400
    assert REJECTED in response.get_data(as_text=True)


def test_post_with_wrong_csrf_token_is_rejected(
    client: FlaskClient, auth: AuthActions, world: World
) -> None:
    auth.login(world.alice.email)
    response = client.post("/logout", data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert client.get("/").status_code == 200  # still logged in


def test_csrf_token_changes_at_login(client: FlaskClient, auth: AuthActions, world: World) -> None:
    before = auth.token()
    auth.login(world.alice.email)
    assert auth.token() != before


def test_student_gets_403_on_staff_pages(
    client: FlaskClient, auth: AuthActions, world: World
) -> None:
    auth.login(world.alice.email)
    for url in ("/staff/", f"/staff/assignments/{world.assignment.id}"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "This page is for course staff." in response.get_data(as_text=True)


def test_safe_next_refuses_other_sites(app: Flask) -> None:
    with app.test_request_context():
        assert safe_next("/submissions/3") == "/submissions/3"
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", None):
            assert safe_next(target) == "/"
