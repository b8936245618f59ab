"""Fixtures for the web tests (flaskr style): ``app``, ``client``, ``auth``, row
factories (``make``, see factories.py) and handin archives built at test time.

Every test runs against SQLite, then (marked ``postgres``) against a fresh Postgres
database from tests/services.py; in CI a missing Postgres fails, elsewhere it skips.
The schema comes from the migrations, as in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from store.migrate import upgrade
from tests.conftest import MYTORCH_SOLUTION
from tests.services import Recorder, any_database_url, postgres_url, redis_url, tar_gz
from tests.web.factories import AuthActions, Factory, World
from web import create_app
from web.services import ENQUEUER_KEY, Services

__all__ = ["any_database_url", "postgres_url", "redis_url"]  # fixtures, found by name


@pytest.fixture
def enqueuer() -> Recorder:
    return Recorder()


@pytest.fixture
def app(any_database_url: str, tmp_path: Path, enqueuer: Recorder) -> Iterator[Flask]:
    upgrade(any_database_url)
    app = create_app({
        "TESTING": True,
        "DLGRADE_DATA_DIR": str(tmp_path / "data"),
        "DLGRADE_DATABASE_URL": any_database_url,
        "DLGRADE_EMBEDDED": "true",
        "DLGRADE_SECRET_KEY": "test-secret",
        ENQUEUER_KEY: enqueuer,
    })
    yield app
    services_of(app).engine.dispose()


def services_of(app: Flask) -> Services:
    found = app.extensions["dlgrade"]
    assert isinstance(found, Services)
    return found


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    with services_of(app).db_factory() as session:
        yield session


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def make(db: Session) -> Factory:
    return Factory(db)


@pytest.fixture
def world(make: Factory) -> World:
    course = make.course("dl101")
    staff, alice, bob = make.user("staff"), make.user(email="alice@example.edu"), make.user()
    for user in (staff, alice, bob):
        make.enroll(user, course)
    return World(course, staff, alice, bob, make.assignment(course))


@pytest.fixture(scope="session")
def handin() -> bytes:
    """The reference solution of mytorch-cnn as a student would upload it."""
    return tar_gz(MYTORCH_SOLUTION)
