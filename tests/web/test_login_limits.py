"""web/login_limits.py through the login page: failed logins are limited per e-mail
and per address (429 with Retry-After, the password not even checked), successes are
not counted, the window ends, and a stranger cannot lock the owner's browser out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from store.migrate import upgrade
from tests.services import Recorder
from tests.web.conftest import services_of
from tests.web.factories import PASSWORD, Factory, World, csrf_token
from web import create_app
from web.auth import BAD_LOGIN
from web.login_limits import DEVICE_COOKIE
from web.ratelimit import MemoryCounter
from web.services import ENQUEUER_KEY

HOME, STRANGER = "192.0.2.10", "198.51.100.66"


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: Flask) -> Clock:
    found = Clock()
    services_of(app).limiter.counter = MemoryCounter(found)
    return found


def login(client: FlaskClient, email: str, password: str = PASSWORD,
          address: str = HOME) -> TestResponse:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def fail(client: FlaskClient, email: str, times: int, address: str = HOME) -> list[int]:
    return [login(client, email, "wrong", address).status_code for _ in range(times)]


def test_ten_failures_per_email_then_429(app: Flask, world: World, clock: Clock) -> None:
    client = app.test_client()
    assert fail(client, world.alice.email, 10) == [401] * 10
    refused = login(client, world.alice.email)  # the right password, too late
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "900"
    page = refused.get_data(as_text=True)
    assert "Too many failed attempts to log in; please wait 15 minutes" in page
    assert client.get("/").status_code == 302  # not logged in
    # the e-mail is limited from every address (a new browser), other accounts are not
    elsewhere = app.test_client()
    assert login(elsewhere, world.alice.email, address=STRANGER).status_code == 429
    assert login(elsewhere, world.bob.email).status_code == 302


def test_the_window_ends(app: Flask, world: World, clock: Clock) -> None:
    client = app.test_client()
    fail(client, world.alice.email, 10)
    clock.now += 600
    refused = login(client, world.alice.email)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "300"
    assert "please wait 5 minutes" in refused.get_data(as_text=True)
    clock.now += 300
    assert login(client, world.alice.email).status_code == 302


def test_successful_logins_are_not_counted(app: Flask, world: World, clock: Clock) -> None:
    for _ in range(15):
        client = app.test_client()  # a new browser each time: the e-mail's budget
        assert login(client, world.alice.email).status_code == 302
    response = login(app.test_client(), world.alice.email, "wrong")
    assert response.status_code == 401 and BAD_LOGIN in response.get_data(as_text=True)


def test_unknown_emails_are_counted_the_same(app: Flask, world: World, clock: Clock) -> None:
    client = app.test_client()
    assert fail(client, "nobody@example.edu", 11) == [401] * 10 + [429]


def test_a_stranger_cannot_lock_out_the_owners_browser(app: Flask, world: World,
                                                       clock: Clock) -> None:
    owner = app.test_client()
    assert login(owner, world.alice.email).status_code == 302
    assert owner.get_cookie(DEVICE_COOKIE, path="/login") is not None
    owner.post("/logout", data={"csrf_token": csrf_token(owner.get("/").get_data(as_text=True))})
    stranger = app.test_client()
    assert fail(stranger, world.alice.email, 11, STRANGER) == [401] * 10 + [429]
    assert login(owner, world.alice.email).status_code == 302  # the usual browser
    assert login(app.test_client(), world.alice.email).status_code == 429  # a new one
    # the owner's browser has a budget of its own, just as strict
    assert fail(owner, world.alice.email, 11) == [401] * 10 + [429]


def test_a_forged_or_foreign_device_cookie_is_ignored(app: Flask, world: World,
                                                      clock: Clock) -> None:
    bob = app.test_client()
    assert login(bob, world.bob.email).status_code == 302  # a cookie for bob's account
    cookie = bob.get_cookie(DEVICE_COOKIE, path="/login")
    assert cookie is not None
    stranger = app.test_client()
    fail(stranger, world.alice.email, 10, STRANGER)
    for value in (cookie.value, "forged"):
        stranger.set_cookie(DEVICE_COOKIE, value, path="/login")
        assert login(stranger, world.alice.email, address=STRANGER).status_code == 429


def small_app_at(tmp_path: Path, **more: str) -> Flask:
    url = f"sqlite:///{tmp_path / 'dlgrade.db'}"
    upgrade(url)
    return create_app({
        "TESTING": True, "DLGRADE_DATA_DIR": str(tmp_path / "data"), "DLGRADE_DATABASE_URL": url,
        "DLGRADE_EMBEDDED": "true", "DLGRADE_SECRET_KEY": "test", ENQUEUER_KEY: Recorder(),
        "DLGRADE_LOGIN_RATE_ADDRESS": "3", "DLGRADE_LOGIN_RATE_WINDOW": "60", **more})


@pytest.fixture
def small_app(tmp_path: Path) -> Iterator[Flask]:
    app = small_app_at(tmp_path)
    yield app
    services_of(app).engine.dispose()


def test_one_address_trying_many_accounts(small_app: Flask) -> None:
    with services_of(small_app).db_factory() as db:
        email = Factory(db).user().email
    client = small_app.test_client()
    codes = [login(client, f"guess{n}@example.edu", "x").status_code for n in range(4)]
    assert codes == [401, 401, 401, 429]
    refused = login(client, email)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) <= 60
    assert login(client, email, address=STRANGER).status_code == 302


@pytest.mark.redis
def test_counted_in_redis_without_the_email(tmp_path: Path, redis_url: str) -> None:
    """Web processes share the count through Redis; keys hold a keyed hash, no address."""
    import redis

    first = small_app_at(tmp_path, DLGRADE_API_RATE_REDIS_URL=redis_url)
    second = small_app_at(tmp_path, DLGRADE_API_RATE_REDIS_URL=redis_url)
    try:
        codes = [login(app.test_client(), "victim@example.edu", "x").status_code
                 for app in (first, second, first, second)]
        assert codes == [401, 401, 401, 429]
        keys = [key.decode() for key in redis.Redis.from_url(redis_url).keys("*")]
        assert any(key.startswith("dlgrade:ratelimit:login_email:") for key in keys)
        assert not any("@" in key for key in keys)
    finally:
        for app in (first, second):
            services_of(app).engine.dispose()
