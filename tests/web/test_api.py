"""API v1 (web/api.py): bearer tokens, creating submissions, reading results."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from grader.extract import NOT_AN_ARCHIVE
from store.models import Submission
from tests.services import Recorder
from tests.web.factories import AuthActions, Factory, World, big_upload, gs_test
from web.api import BAD_TOKEN, NO_FILE, NO_TOKEN


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(client: FlaskClient, token: str, content: bytes, slug: str = "mytorch-cnn",
         query: str = "") -> TestResponse:
    return client.post(f"/api/v1/assignments/{slug}/submissions{query}", headers=bearer(token),
                       data={"file": (io.BytesIO(content), "handin.tar.gz")},
                       content_type="multipart/form-data")


@pytest.fixture
def token(make: Factory, world: World) -> str:
    return make.token(world.alice)


def test_no_token_is_401(client: FlaskClient, world: World) -> None:
    response = client.get("/api/v1/assignments")
    assert response.status_code == 401
    assert response.get_json() == {"error": NO_TOKEN}
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer nonsense", "Basic YWxpY2U6cHc=", "Bearer "])
def test_bad_token_is_401(client: FlaskClient, world: World, header: str) -> None:
    response = client.get("/api/v1/assignments", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"] in (NO_TOKEN, BAD_TOKEN)


def test_session_cookie_is_not_enough(client: FlaskClient, world: World) -> None:
    AuthActions(client).login(world.alice.email)
    assert client.get("/api/v1/assignments").status_code == 401


def test_list_assignments(client: FlaskClient, token: str) -> None:
    body = client.get("/api/v1/assignments", headers=bearer(token)).get_json()
    assert [(a["slug"], a["course"]) for a in body["assignments"]] == [("mytorch-cnn", "dl101")]


def test_create_submission_is_202(client: FlaskClient, token: str, handin: bytes, db: Session,
                                  enqueuer: Recorder) -> None:
    response = post(client, token, handin)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["url"] == f"http://localhost/api/v1/submissions/{body['id']}"
    assert response.headers["Location"] == body["url"]
    assert enqueuer.calls == [(body["id"], "cpu")]


def test_broker_down_still_202_and_queued(client: FlaskClient, token: str, handin: bytes,
                                          db: Session, enqueuer: Recorder) -> None:
    enqueuer.up = False
    response = post(client, token, handin)
    assert response.status_code == 202
    row = db.get(Submission, response.get_json()["id"])
    assert row is not None and row.status == "queued"


def test_missing_file_is_400(client: FlaskClient, token: str) -> None:
    response = client.post("/api/v1/assignments/mytorch-cnn/submissions", headers=bearer(token))
    assert response.status_code == 400
    assert response.get_json() == {"error": NO_FILE}


def test_unknown_assignment_is_404(client: FlaskClient, token: str, handin: bytes) -> None:
    response = post(client, token, handin, slug="nope")
    assert response.status_code == 404
    assert response.get_json() == {"error": "There is no assignment 'nope' in your courses."}


def test_ambiguous_slug_needs_course(client: FlaskClient, make: Factory, world: World,
                                     token: str, handin: bytes) -> None:
    other = make.course("dl102")
    make.enroll(world.alice, other)
    make.assignment(other)
    response = post(client, token, handin)
    assert response.status_code == 400
    assert "?course=SLUG" in response.get_json()["error"]
    assert post(client, token, handin, query="?course=dl102").status_code == 202


def test_corrupt_is_422(client: FlaskClient, token: str) -> None:
    response = post(client, token, b"garbage")
    assert response.status_code == 422
    assert response.get_json() == {"error": NOT_AN_ARCHIVE}


def test_too_large_is_413(client: FlaskClient, token: str) -> None:
    url = "/api/v1/assignments/mytorch-cnn/submissions"
    with big_upload(client, url, b"\0" * (17 << 20), headers=bearer(token)) as response:
        assert response.status_code == 413
        assert response.get_json()["error"].startswith("Your file is 17.0 MB; the limit is 16 MB")


def test_closed_is_403(client: FlaskClient, make: Factory, world: World, token: str,
                       handin: bytes) -> None:
    world.assignment.due_at = datetime.now(UTC) - timedelta(days=1)
    make.db.commit()
    response = post(client, token, handin)
    assert response.status_code == 403
    assert "late submissions are not accepted" in response.get_json()["error"]


def test_daily_limit_is_429(client: FlaskClient, make: Factory, world: World, token: str,
                            handin: bytes) -> None:
    world.assignment.daily_limit = 1
    make.db.commit()
    assert post(client, token, handin).status_code == 202
    response = post(client, token, handin)
    assert response.status_code == 429
    assert "You have used 1 of 1 submissions today" in response.get_json()["error"]


def test_get_results_filters_for_students(client: FlaskClient, make: Factory, world: World,
                                          token: str) -> None:
    done = make.graded(world.alice, world.assignment,
                       [gs_test(1, "shown", 5, 5), gs_test(2, "secret", 1, 10, "hidden", "hint")])
    body = client.get(f"/api/v1/submissions/{done.id}", headers=bearer(token)).get_json()
    assert (body["id"], body["status"], body["score"], body["max_score"]) == (done.id, "done", 5, 5)
    assert [t["name"] for t in body["results"]["tests"]] == ["shown"]
    assert body["withheld_tests"] == 1

    staff = make.token(world.staff)
    body = client.get(f"/api/v1/submissions/{done.id}", headers=bearer(staff)).get_json()
    assert (body["score"], body["max_score"]) == (6, 15)
    assert [t["name"] for t in body["results"]["tests"]] == ["shown", "secret"]


def test_get_queued_has_no_results(client: FlaskClient, make: Factory, world: World,
                                   token: str) -> None:
    queued = make.submission(world.alice, world.assignment)
    body = client.get(f"/api/v1/submissions/{queued.id}", headers=bearer(token)).get_json()
    assert (body["status"], body["score"], body["results"]) == ("queued", None, None)


def test_others_submission_is_404(client: FlaskClient, make: Factory, world: World,
                                  token: str) -> None:
    theirs = make.submission(world.bob, world.assignment)
    response = client.get(f"/api/v1/submissions/{theirs.id}", headers=bearer(token))
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_unknown_route_is_json(client: FlaskClient, token: str) -> None:
    response = client.get("/api/v1/nothing", headers=bearer(token))
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_upload_then_read_back(client: FlaskClient, token: str, handin: bytes, db: Session) -> None:
    created = post(client, token, handin).get_json()
    body = client.get(created["url"], headers=bearer(token)).get_json()
    assert body["status"] == "queued" and body["assignment"] == "mytorch-cnn"
    assert db.scalars(select(Submission.id)).all() == [created["id"]]
