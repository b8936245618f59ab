"""web/uploads.py under faults (issue 17): idempotency keys (API header, web form), a
database that drops the upload's transaction, a data directory out of space."""

from __future__ import annotations

import errno
import io
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from store.archives import ArchiveStore
from store.models import Submission
from tests.services import Recorder
from tests.web.conftest import services_of
from tests.web.factories import AuthActions, Factory, World
from web import uploads

URL = "/api/v1/assignments/mytorch-cnn/submissions"


@pytest.fixture
def alice(make: Factory, world: World) -> str:
    return make.token(world.alice)


def post(client: FlaskClient, token: str, archive: bytes, key: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(URL, headers=headers,
                       data={"file": (io.BytesIO(archive), "handin.tar.gz")})


def rows(db: Session) -> int:
    db.expire_all()
    return int(db.scalar(select(func.count(Submission.id))) or 0)


def test_a_resent_upload_with_its_key_gets_the_first_ones_submission(
    client: FlaskClient, alice: str, handin: bytes, db: Session, enqueuer: Recorder,
) -> None:
    first = post(client, alice, handin, "k-1")
    again = post(client, alice, handin, "k-1")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert rows(db) == 1 and len(enqueuer.calls) == 1  # queued once
    other = post(client, alice, handin, "k-2")
    assert other.get_json()["id"] != first.get_json()["id"] and rows(db) == 2
    plain = [post(client, alice, handin) for _ in range(2)]  # no key: two uploads
    assert {p.status_code for p in plain} == {202} and rows(db) == 4


def test_a_key_used_for_another_upload_is_refused(
    client: FlaskClient, alice: str, handin: bytes, db: Session, make: Factory, world: World,
) -> None:
    assert post(client, alice, handin, "k").status_code == 202
    refused = post(client, alice, handin + b"\0", "k")
    assert refused.status_code == 422
    assert refused.get_json()["error"].startswith("This Idempotency-Key was already used for a "
                                                  "different upload")
    bob = make.token(world.bob)
    assert post(client, bob, handin, "k").status_code == 202  # keys are per user
    bad = post(client, alice, handin, "not a key")
    assert bad.status_code == 400 and "visible ASCII" in bad.get_json()["error"]
    assert rows(db) == 2


def test_a_resent_upload_is_not_refused_by_the_daily_limit(
    client: FlaskClient, alice: str, handin: bytes, db: Session, make: Factory, world: World,
) -> None:
    world.assignment.daily_limit = 1
    make.db.commit()
    first = post(client, alice, handin, "k")
    assert post(client, alice, handin, "k").get_json()["id"] == first.get_json()["id"]
    assert post(client, alice, handin, "k2").status_code == 429


def test_the_web_form_sends_a_key_so_a_resent_form_makes_one_submission(
    client: FlaskClient, auth: AuthActions, world: World, handin: bytes, db: Session,
) -> None:
    auth.login(world.alice.email)
    page = client.get(f"/assignments/{world.assignment.id}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert key is not None and csrf is not None

    def send(archive: bytes) -> Any:
        return client.post(f"/assignments/{world.assignment.id}/submissions", data={
            "csrf_token": csrf.group(1), "idempotency_key": key.group(1),
            "file": (io.BytesIO(archive), "handin.tar.gz")})

    first, twice = send(handin), send(handin)  # a double click
    assert first.status_code == twice.status_code == 302
    assert first.headers["Location"] == twice.headers["Location"] and rows(db) == 1
    assert send(handin + b"\0").status_code == 302 and rows(db) == 2  # another file: new


def test_an_upload_survives_its_database_connection_dropping_once(
    app: Flask, client: FlaskClient, alice: str, handin: bytes, db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first try of the transaction fails as a restarted Postgres makes it fail;
    the retry records the upload once."""
    real, calls = uploads.insert, []

    def drop_first(*args: Any, **kwargs: Any) -> Submission:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(*args, **kwargs)

    monkeypatch.setattr(uploads, "insert", drop_first)
    monkeypatch.setattr(uploads, "DB_RETRY_DELAYS", (0.01, 0.01))
    response = post(client, alice, handin, "k")
    assert response.status_code == 202 and len(calls) == 2 and rows(db) == 1


def test_an_ambiguous_commit_is_resolved_by_the_key(
    client: FlaskClient, alice: str, handin: bytes, db: Session, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The commit reached the database but its answer was lost: the retry finds the row
    by its key instead of making a second (even without a client key)."""
    real, calls = uploads.insert, []

    def commit_then_drop(*args: Any, **kwargs: Any) -> Submission:
        calls.append(1)
        made = real(*args, **kwargs)
        if len(calls) == 1:
            raise OperationalError("COMMIT", {}, Exception("connection lost after commit"))
        return made

    monkeypatch.setattr(uploads, "insert", commit_then_drop)
    monkeypatch.setattr(uploads, "DB_RETRY_DELAYS", (0.01,))
    response = post(client, alice, handin)
    assert response.status_code == 202 and rows(db) == 1
    assert "Idempotent-Replayed" not in response.headers  # the client sent it once


def test_a_database_that_stays_away_is_a_503_with_retry_after(
    client: FlaskClient, alice: str, handin: bytes, db: Session, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down(*args: Any, **kwargs: Any) -> Submission:
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(uploads, "insert", down)
    monkeypatch.setattr(uploads, "DB_RETRY_DELAYS", (0.01, 0.01))
    response = post(client, alice, handin, "k")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.get_json() == {"error": uploads.DATABASE_DOWN}
    assert rows(db) == 0


def test_any_request_while_the_database_is_down_is_a_503_not_a_500(
    client: FlaskClient, alice: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from web import api

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(api, "token_for", down)
    response = client.get("/api/v1/submissions", headers={"Authorization": f"Bearer {alice}"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "cannot reach its database" in response.get_json()["error"]


def test_a_full_data_directory_is_a_507_and_leaves_nothing(
    app: Flask, client: FlaskClient, alice: str, handin: bytes, db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = ArchiveStore(services_of(app).settings.data_dir)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("store.archives.os.fsync", full)  # the staged file's last write
    response = post(client, alice, handin, "k")
    assert response.status_code == 507 and response.get_json()["error"] == uploads.OUT_OF_SPACE
    assert response.headers["Retry-After"] == "60"
    assert rows(db) == 0 and list(store.root.iterdir()) == []
