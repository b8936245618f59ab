"""web/ratelimit.py: fixed windows in memory and in Redis (marked redis), and the API's
429s with Retry-After and X-RateLimit-* headers."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from store.migrate import upgrade
from tests.services import Recorder, make_settings
from tests.web.conftest import services_of
from tests.web.factories import Factory
from web import create_app, ratelimit
from web.ratelimit import Budget, MemoryCounter, RateLimiter, RedisCounter, make_limiter
from web.services import ENQUEUER_KEY


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(counter: object, limit: int = 2, window: int = 60) -> RateLimiter:
    return RateLimiter(counter, {"reads": Budget("reads", limit, window)})  # type: ignore[arg-type]


def test_memory_window_allows_then_refuses_then_resets() -> None:
    clock = Clock()
    rates = limiter(MemoryCounter(clock))
    first, second, third = (rates.hit("reads", "t1") for _ in range(3))
    assert first and second and third
    assert (first.allowed, first.remaining) == (True, 1)
    assert (second.allowed, second.remaining) == (True, 0)
    assert third.allowed is False and third.reset_after == 60
    assert third.headers()["Retry-After"] == "60"
    other = rates.hit("reads", "t2")
    assert other is not None and other.allowed  # budgets are per identity
    clock.now += 45
    later = rates.hit("reads", "t1")
    assert later is not None and not later.allowed and later.reset_after == 15
    clock.now += 15
    fresh = rates.hit("reads", "t1")
    assert fresh is not None and fresh.allowed and fresh.remaining == 1


def test_peek_does_not_count() -> None:
    rates = limiter(MemoryCounter(Clock()), limit=1)
    for _ in range(3):
        peeked = rates.peek("reads", "ip")
        assert peeked is not None and peeked.allowed
    assert rates.hit("reads", "ip").allowed  # type: ignore[union-attr]
    assert not rates.peek("reads", "ip").allowed  # type: ignore[union-attr]


def test_zero_is_unlimited() -> None:
    assert limiter(MemoryCounter(), limit=0).hit("reads", "x") is None


def test_backend_choice(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite://")
    assert ratelimit.redis_url(settings) is None
    assert isinstance(make_limiter(settings).counter, MemoryCounter)
    with_broker = make_settings(tmp_path, "sqlite://", broker_url="redis://127.0.0.1:1/0")
    assert ratelimit.redis_url(with_broker) == "redis://127.0.0.1:1/0"
    assert isinstance(make_limiter(with_broker).counter, RedisCounter)


def test_redis_down_lets_requests_through() -> None:
    rates = limiter(RedisCounter("redis://127.0.0.1:1/0"))
    assert rates.hit("reads", "t") is None


@pytest.mark.redis
def test_redis_window_is_shared_and_expires(redis_url: str) -> None:
    import redis

    one, two = limiter(RedisCounter(redis_url)), limiter(RedisCounter(redis_url))
    assert one.hit("reads", "t").allowed  # type: ignore[union-attr]
    assert two.hit("reads", "t").allowed  # type: ignore[union-attr]
    refused = one.hit("reads", "t")
    assert refused is not None and not refused.allowed and 59 <= refused.reset_after <= 60
    assert not two.peek("reads", "t").allowed  # type: ignore[union-attr]
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.pttl("dlgrade:ratelimit:reads:t") <= 60_000
    client.pexpire("dlgrade:ratelimit:reads:t", 1)  # the window ends
    import time

    time.sleep(0.05)
    assert one.hit("reads", "t").allowed  # type: ignore[union-attr]


# --- through the API ------------------------------------------------------------------------


@pytest.fixture
def limited_app(tmp_path: Path) -> Iterator[Flask]:
    url = f"sqlite:///{tmp_path / 'dlgrade.db'}"
    upgrade(url)
    app = create_app({
        "TESTING": True, "DLGRADE_DATA_DIR": str(tmp_path / "data"), "DLGRADE_DATABASE_URL": url,
        "DLGRADE_EMBEDDED": "true", "DLGRADE_SECRET_KEY": "test", ENQUEUER_KEY: Recorder(),
        "DLGRADE_API_RATE_READS": "3", "DLGRADE_API_RATE_WRITES": "1",
        "DLGRADE_API_RATE_AUTH_FAILURES": "2"})
    yield app
    services_of(app).engine.dispose()


@pytest.fixture
def token(limited_app: Flask) -> str:
    with services_of(limited_app).db_factory() as db:
        make = Factory(db)
        course = make.course("dl101")
        user = make.user()
        make.enroll(user, course)
        make.assignment(course)
        return make.token(user)


def test_api_reads_get_429_with_retry_after(limited_app: Flask, token: str) -> None:
    client = limited_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    answers = [client.get("/api/v1/assignments", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert answers[0].headers["X-RateLimit-Remaining"] == "2"
    refused = answers[3]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"].startswith("Too many requests with this token")


def test_uploads_have_their_own_budget(limited_app: Flask, token: str, handin: bytes) -> None:
    client: FlaskClient = limited_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def upload() -> int:
        data = {"file": (io.BytesIO(handin), "h.tar.gz")}
        return client.post("/api/v1/assignments/mytorch-cnn/submissions", headers=headers,
                           data=data, content_type="multipart/form-data").status_code

    assert [upload(), upload()] == [202, 429]
    assert client.get("/api/v1/submissions", headers=headers).status_code == 200


def test_auth_failures_are_limited_per_address(limited_app: Flask, token: str) -> None:
    client = limited_app.test_client()
    bad = {"Authorization": "Bearer dlg_guess"}
    codes = [client.get("/api/v1/assignments", headers=bad).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    # once blocked, even a good token from that address waits
    blocked = client.get("/api/v1/assignments", headers={"Authorization": f"Bearer {token}"})
    assert blocked.status_code == 429 and "Retry-After" in blocked.headers
    other = client.get("/api/v1/assignments", headers={"Authorization": f"Bearer {token}"},
                       environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
