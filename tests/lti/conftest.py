"""Fixtures of the LTI tests: the test LMS (tests/lti/lms.py, on lti1p3platform)
and dlgrade, each a real HTTP server on its own loopback port, registered with each
other as an LMS admin and a dlgrade admin would."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from grader.outcomes import Outcome
from grader.results import GradingResult, TestResult
from store import leases
from store import lti as lti_store
from store.db import SessionFactory
from store.migrate import upgrade
from store.models import Assignment, Course, Submission, TestScore, User, utcnow
from tasks.lti_passback import LtiPassback
from tasks.settings import Settings
from tests.browser.conftest import browser  # noqa: F401 - the Chromium fixture
from tests.lti.lms import CLIENT_ID, DEPLOYMENT, LIS, LinkSpec, Member, TestLms
from tests.services import any_database_url, postgres_url, sqlite_factory, sqlite_url
from web import create_app
from web.services import Services

__all__ = ["any_database_url", "postgres_url", "sqlite_factory", "sqlite_url"]


@dataclass
class Tool:
    url: str
    app: Flask
    settings: Settings
    db_factory: SessionFactory

    def passback(self) -> LtiPassback:
        return LtiPassback(self.db_factory, self.settings)


@pytest.fixture
def lms() -> Iterator[TestLms]:
    platform = TestLms().start()
    platform.members = {
        "teacher": Member("u-teacher", "teacher@uni.example", "Tess Teacher", [LIS + "Instructor"]),
        "alice": Member("u-alice", "alice@uni.example", "Alice Learner", [LIS + "Learner"]),
        "bob": Member("u-bob", "bob@uni.example", "Bob Learner", [LIS + "Learner"]),
        "olga": Member("u-olga", "olga@uni.example", "Olga Observer",
                       ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"]),
    }
    platform.links = {"rl-1": LinkSpec("Homework 1 in dlgrade")}
    yield platform
    platform.stop()


@pytest.fixture
def tool(any_database_url: str, tmp_path: Path, lms: TestLms) -> Iterator[Tool]:
    upgrade(any_database_url)
    app = create_app({
        "TESTING": True, "DLGRADE_DATA_DIR": str(tmp_path / "data"),
        "DLGRADE_DATABASE_URL": any_database_url, "DLGRADE_EMBEDDED": "true",
        "DLGRADE_SECRET_KEY": "test-secret", "DLGRADE_LTI_ALLOW_HTTP": "true",
        "DLGRADE_LTI_RETRY_SECONDS": "0", "DLGRADE_LTI_MAX_ATTEMPTS": "3",
    })
    services = app.extensions["dlgrade"]
    assert isinstance(services, Services)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    lms.tool_url = url
    with services.db_factory() as db:
        lti_store.register_platform(db, lti_store.PlatformInput(
            issuer=lms.issuer, client_id=CLIENT_ID, auth_login_url=lms.url + "/auth",
            auth_token_url=lms.url + "/token", key_set_url=lms.url + "/jwks",
            deployment_ids=(DEPLOYMENT,), name="Test LMS"), allow_http=True)
        db.commit()
    try:
        yield Tool(url, app, services.settings, services.db_factory)
    finally:
        server.shutdown()
        services.engine.dispose()


def add_assignment(db: Session, course_slug: str, slug: str = "mytorch-cnn") -> Assignment:
    course = db.query(Course).filter_by(slug=course_slug).one()
    assignment = Assignment(course_id=course.id, slug=slug, title="Homework 1",
                            late_penalty_per_day=0.1)
    db.add(assignment)
    db.commit()
    return assignment


def grade(db_factory: SessionFactory, assignment_id: int, user_id: int,
          tests: list[tuple[float, float, str]], *, late_days: int = 0,
          submission_id: int | None = None) -> int:
    """A submission graded as the worker stores it (claim, then leases.finish, the
    transaction that flags the LTI score); a regrade when ``submission_id`` is given."""
    with db_factory() as db:
        if submission_id is None:
            row = Submission(assignment_id=assignment_id, user_id=user_id, archive_sha256="0" * 64,
                             archive_size=1, late_days=late_days)
            db.add(row)
        else:
            row = db.get(Submission, submission_id)
            assert row is not None
            row.status, row.lease_until = "queued", None
        db.commit()
        submission_id = row.id
        taken = leases.claim(db, submission_id, "test-worker", 60, 5)
        assert taken.status == "claimed"
        rows = [TestScore(position=i, number=str(i + 1), name=f"test {i + 1}", score=s,
                          max_score=m, outcome="passed" if s == m else "failed", visibility=v)
                for i, (s, m, v) in enumerate(tests)]
        record = GradingResult("mytorch-cnn", [
            TestResult(row.name, row.number, row.max_score, row.score,
                       Outcome.PASSED if row.outcome == "passed" else Outcome.FAILED, "",
                       row.visibility) for row in rows], 1.0).to_record()
        # As the worker stores it: the graded points (the late penalty is applied when
        # the score is shown, store.scores) and dlgrade's record.
        values: dict[str, Any] = {"status": "done", "score": sum(t[0] for t in tests),
                                  "max_score": sum(t[1] for t in tests), "results": record,
                                  "finished_at": utcnow() + timedelta(seconds=1)}
        assert leases.finish(db, submission_id, taken.attempt, "test-worker", values, rows)
    return submission_id


def user_by_email(db: Session, email: str) -> User:
    return db.query(User).filter_by(email=email).one()



FORM_FIELD = re.compile(r"name='(id_token|state)' value='([^']*)'")
FORM_ACTION = re.compile(r"action='([^']*)'")


@dataclass
class Posted:
    """The LMS's auto-submitting form, as a browser would have posted it."""

    action: str
    id_token: str
    state: str

    def claims(self) -> dict[str, Any]:
        return dict(jwt.decode(self.id_token, options={"verify_signature": False}))


def start_launch(session: requests.Session, lms: TestLms, login: str, link: str) -> Posted:
    """Login initiation and authorization, with ``session`` as the browser; returns the
    form the LMS would post to dlgrade (not yet posted)."""
    page = session.get(f"{lms.url}/start/{login}/{link}", timeout=10)
    assert page.status_code == 200, page.text
    fields = dict(FORM_FIELD.findall(page.text))
    action = FORM_ACTION.search(page.text)
    assert action and "id_token" in fields, page.text
    return Posted(action.group(1), fields["id_token"], fields["state"])


def post_launch(session: requests.Session, posted: Posted) -> requests.Response:
    return session.post(posted.action, data={"id_token": posted.id_token,
                                             "state": posted.state},
                        allow_redirects=False, timeout=10)


def resign(lms: TestLms, token: str, key: str | None = None, **changes: Any) -> str:
    """``token``'s claims with ``changes`` (None deletes), signed with the LMS's key (or
    ``key``) under the LMS's key id."""
    claims = dict(jwt.decode(token, options={"verify_signature": False}))
    for name, value in changes.items():
        name = name.replace("__", "/")
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.encode(claims, key or lms.private_key, algorithm="RS256", headers={"kid": kid})
