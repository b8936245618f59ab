"""API v1 beyond uploads (web/api.py, web/api_staff.py): lists and pagination, scopes,
the scores export, regrading, webhook registration and JSON errors everywhere."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Submission, Webhook, WebhookDelivery
from tasks import netguard
from tests.services import Recorder
from tests.web.conftest import services_of
from tests.web.factories import Factory, World, gs_test
from web.api import ONLY_OWN
from web.scopes import missing


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def alice(make: Factory, world: World) -> str:
    return make.token(world.alice)


@pytest.fixture
def staff(make: Factory, world: World) -> str:
    return make.token(world.staff)


def ids(client: FlaskClient, url: str, token: str) -> list[int]:
    body = client.get(url, headers=bearer(token)).get_json()
    return [item["id"] for item in body["submissions"]]


def test_get_one_assignment(client: FlaskClient, alice: str) -> None:
    body = client.get("/api/v1/assignments/mytorch-cnn", headers=bearer(alice)).get_json()
    assert (body["slug"], body["course"], body["title"]) == ("mytorch-cnn", "dl101", "MyTorch CNN")
    response = client.get("/api/v1/assignments/nope", headers=bearer(alice))
    assert response.status_code == 404
    assert response.get_json() == {"error": "There is no assignment 'nope' in your courses."}


def test_students_list_only_their_own(client: FlaskClient, make: Factory, world: World,
                                      alice: str, staff: str) -> None:
    mine = make.submission(world.alice, world.assignment)
    theirs = make.submission(world.bob, world.assignment)
    url = "/api/v1/assignments/mytorch-cnn/submissions"
    assert ids(client, url, alice) == [mine.id]
    assert ids(client, url, staff) == [theirs.id, mine.id]
    assert ids(client, f"{url}?student=Alice@example.edu", staff) == [mine.id]
    assert ids(client, f"{url}?student=nobody@example.edu", staff) == []
    assert ids(client, "/api/v1/submissions", alice) == [mine.id]
    response = client.get(f"{url}?student={world.bob.email}", headers=bearer(alice))
    assert (response.status_code, response.get_json()) == (403, {"error": ONLY_OWN})


def test_pagination_is_stable(client: FlaskClient, make: Factory, world: World,
                              alice: str) -> None:
    made = [make.submission(world.alice, world.assignment).id for _ in range(5)]
    first = client.get("/api/v1/submissions?limit=2", headers=bearer(alice)).get_json()
    assert [s["id"] for s in first["submissions"]] == made[:2:-1][:2]
    make.submission(world.alice, world.assignment)  # a new one does not shift later pages
    second = client.get(f"/api/v1/submissions?limit=2&cursor={first['next_cursor']}",
                        headers=bearer(alice)).get_json()
    assert [s["id"] for s in second["submissions"]] == [made[2], made[1]]
    last = client.get(f"/api/v1/submissions?limit=2&cursor={second['next_cursor']}",
                      headers=bearer(alice)).get_json()
    assert [s["id"] for s in last["submissions"]] == [made[0]] and last["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x", "cursor=-1",
                                   "cursor=abc", "cursor=99999999999"])
def test_bad_page_parameters_are_400(client: FlaskClient, alice: str, query: str) -> None:
    response = client.get(f"/api/v1/submissions?{query}", headers=bearer(alice))
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}


def test_list_scores_follow_visibility(client: FlaskClient, make: Factory, world: World,
                                       alice: str, staff: str) -> None:
    make.graded(world.alice, world.assignment,
                [gs_test(1, "shown", 5, 5), gs_test(2, "secret", 1, 10, "hidden")])
    url = "/api/v1/assignments/mytorch-cnn/submissions"
    own = client.get(url, headers=bearer(alice)).get_json()["submissions"][0]
    assert (own["score"], own["max_score"], own["student"]) == (5, 5, "alice@example.edu")
    seen = client.get(url, headers=bearer(staff)).get_json()["submissions"][0]
    assert (seen["score"], seen["max_score"]) == (6, 15)


def test_scopes_limit_a_token(client: FlaskClient, make: Factory, world: World) -> None:
    read_only = make.token(world.alice, scopes="submissions:read")
    assert client.get("/api/v1/submissions", headers=bearer(read_only)).status_code == 200
    response = client.get("/api/v1/assignments", headers=bearer(read_only))
    assert response.status_code == 403
    assert response.get_json() == {"error": missing("assignments:read")}
    assert "'assignments:read'" in missing("assignments:read")


def test_student_tokens_never_get_staff_scopes(client: FlaskClient, make: Factory,
                                               world: World) -> None:
    forged = make.token(world.alice, scopes="regrade scores:read submissions:read")
    response = client.get("/api/v1/assignments/mytorch-cnn/scores", headers=bearer(forged))
    assert response.status_code == 403
    assert response.get_json() == {"error": missing("scores:read")}


def test_staff_scope_on_a_staff_token_of_a_student_is_refused(
        client: FlaskClient, make: Factory, world: World, alice: str) -> None:
    response = client.post("/api/v1/submissions/1/regrade", headers=bearer(alice))
    assert response.status_code == 403 and "'regrade'" in response.get_json()["error"]


def test_scores_json_and_csv(client: FlaskClient, make: Factory, world: World,
                             staff: str) -> None:
    make.graded(world.alice, world.assignment, [gs_test(1, "a", 5, 10)])
    make.graded(world.alice, world.assignment, [gs_test(1, "a", 8, 10)])
    body = client.get("/api/v1/assignments/mytorch-cnn/scores", headers=bearer(staff)).get_json()
    rows = {row["email"]: row for row in body["students"]}
    assert (rows["alice@example.edu"]["best_score"], rows["alice@example.edu"]["attempts"]) \
        == (8, 2)
    assert rows[world.bob.email]["attempts"] == 0 and rows[world.bob.email]["best_score"] is None

    for extra in ({"query_string": "format=csv"}, {"headers": {"Accept": "text/csv"}}):
        headers = {**bearer(staff), **extra.get("headers", {})}
        response = client.get("/api/v1/assignments/mytorch-cnn/scores", headers=headers,
                              query_string=extra.get("query_string"))
        assert response.mimetype == "text/csv"
        table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        by_email = {r["email"]: r for r in table}
        assert by_email["alice@example.edu"]["mytorch-cnn"] == "8"  # the one format (web.sheets)
        assert by_email["alice@example.edu"]["mytorch-cnn attempts"] == "2"
        assert "mytorch-cnn: Conv1D forward" in by_email["alice@example.edu"]
    bad = client.get("/api/v1/assignments/mytorch-cnn/scores?format=xml", headers=bearer(staff))
    assert bad.status_code == 400 and bad.get_json() == {"error": "format must be 'json' or 'csv'."}


def test_regrade_one_and_all(client: FlaskClient, make: Factory, world: World, staff: str,
                             db: Session, enqueuer: Recorder) -> None:
    done = make.graded(world.alice, world.assignment, [gs_test(1, "a", 5, 10)])
    busy = make.submission(world.bob, world.assignment, status="running")
    response = client.post(f"/api/v1/submissions/{done.id}/regrade", headers=bearer(staff))
    assert (response.status_code, response.get_json()) == (202, {"id": done.id,
                                                                 "status": "queued"})
    conflict = client.post(f"/api/v1/submissions/{busy.id}/regrade", headers=bearer(staff))
    assert conflict.status_code == 409 and "being graded" in conflict.get_json()["error"]

    body = client.post("/api/v1/assignments/mytorch-cnn/regrade", headers=bearer(staff))
    assert body.status_code == 202
    assert body.get_json() == {"assignment": "mytorch-cnn", "requeued": 1, "busy": [busy.id]}
    assert enqueuer.calls == [(done.id, "cpu"), (done.id, "cpu")]
    db.expire_all()
    assert db.scalar(select(Submission.status).where(Submission.id == done.id)) == "queued"


@pytest.fixture
def public_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every host name resolves to one public address (no DNS in the tests)."""
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.216.34"])


def test_webhooks_register_list_delete(client: FlaskClient, staff: str, alice: str,
                                       db: Session, public_dns: None) -> None:
    url = "/api/v1/courses/dl101/webhooks"
    created = client.post(url, headers=bearer(staff), json={"url": "https://lms.example/hook"})
    assert created.status_code == 201
    hook = created.get_json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["submission.completed"]
    listed = client.get(url, headers=bearer(staff)).get_json()["webhooks"]
    assert [h["url"] for h in listed] == ["https://lms.example/hook"]
    assert "secret" not in listed[0]  # shown once
    assert client.get(url, headers=bearer(alice)).status_code == 403
    assert client.get("/api/v1/courses/other/webhooks", headers=bearer(staff)).status_code == 404
    assert client.delete(f"{url}/{hook['id']}", headers=bearer(staff)).status_code == 204
    assert db.scalars(select(Webhook)).all() == []
    again = client.delete(f"{url}/{hook['id']}", headers=bearer(staff))
    assert again.status_code == 404 and "has no webhook" in again.get_json()["error"]


@pytest.mark.parametrize(("body", "status"), [
    ({"url": "ftp://x/y"}, 422), ({"url": "https://"}, 422), ({"url": 5}, 422),
    ({"url": "https://ok.example", "events": ["nope"]}, 422), ([1, 2], 400), (None, 400),
])
def test_webhook_validation(client: FlaskClient, staff: str, body: object, status: int,
                            public_dns: None) -> None:
    response = client.post("/api/v1/courses/dl101/webhooks", headers=bearer(staff), json=body)
    assert response.status_code == status
    assert set(response.get_json()) == {"error"}


def test_webhook_list_shows_delivery_status(client: FlaskClient, make: Factory, world: World,
                                            staff: str, db: Session, public_dns: None) -> None:
    url = "/api/v1/courses/dl101/webhooks"
    created = client.post(url, headers=bearer(staff), json={"url": "https://lms.example/a"})
    quiet = client.post(url, headers=bearer(staff), json={"url": "https://lms.example/b"})
    assert created.get_json()["deliveries"] == {
        "pending": 0, "delivered": 0, "failed": 0, "last_delivered_at": None,
        "last_error": None, "last_error_delivery": None}
    hook_id = created.get_json()["id"]
    done = make.graded(world.alice, world.assignment, [gs_test(1, "shown", 5, 5)])
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    rows = [("delivered", None, when), ("delivered", None, when - timedelta(hours=1)),
            ("failed", "the endpoint answered HTTP 500", None),
            ("pending", "could not reach the endpoint: timed out", None), ("pending", None, None)]
    for status, error, delivered_at in rows:
        db.add(WebhookDelivery(webhook_id=hook_id, submission_id=done.id,
                               event="submission.completed", payload={}, status=status,
                               last_error=error, delivered_at=delivered_at))
    db.commit()
    newest_error = db.scalars(select(WebhookDelivery.id).where(WebhookDelivery.status == "pending")
                              .order_by(WebhookDelivery.id)).first()
    listed = {h["id"]: h for h in client.get(url, headers=bearer(staff)).get_json()["webhooks"]}
    assert listed[hook_id]["deliveries"] == {
        "pending": 2, "delivered": 2, "failed": 1,
        "last_delivered_at": "2026-03-01T12:00:00+00:00",
        "last_error": "could not reach the endpoint: timed out",
        "last_error_delivery": newest_error}
    assert listed[quiet.get_json()["id"]]["deliveries"]["pending"] == 0


@pytest.mark.parametrize(("url", "sentence"), [
    ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address."),
    ("http://[::1]/hook", "::1 is a loopback address."),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address."),
    ("http://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1 is a private address."),
    ("http://0.0.0.0/", "0.0.0.0 is an unspecified address."),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address."),
    ("http://intranet.corp/hook", "intranet.corp resolves to 192.168.4.4, which is a private "
                                  "address."),
])
def test_webhooks_to_internal_addresses_are_refused(
    client: FlaskClient, staff: str, db: Session, monkeypatch: pytest.MonkeyPatch, url: str,
    sentence: str,
) -> None:
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.216.34", "192.168.4.4"])
    response = client.post("/api/v1/courses/dl101/webhooks", headers=bearer(staff),
                           json={"url": url})
    assert response.status_code == 422
    assert response.get_json() == {
        "error": f"Webhooks may only post to public addresses: {sentence}"}
    assert db.scalars(select(Webhook)).all() == []


def test_webhook_host_that_does_not_resolve(client: FlaskClient, staff: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    monkeypatch.setattr(netguard, "resolve", nowhere)
    response = client.post("/api/v1/courses/dl101/webhooks", headers=bearer(staff),
                           json={"url": "https://lms.invalid/hook"})
    assert response.status_code == 422
    assert response.get_json()["error"] == \
        "The url's host 'lms.invalid' could not be resolved (Name or service not known)."


def test_private_webhooks_when_the_setting_allows(app: Flask, client: FlaskClient,
                                                  staff: str) -> None:
    settings = services_of(app).settings
    services_of(app).settings = replace(settings, webhook_allowed_networks="127.0.0.0/8")
    response = client.post("/api/v1/courses/dl101/webhooks", headers=bearer(staff),
                           json={"url": "http://127.0.0.1:8080/hook"})
    assert response.status_code == 201
    refused = client.post("/api/v1/courses/dl101/webhooks", headers=bearer(staff),
                          json={"url": "http://10.0.0.1/hook"})
    assert refused.status_code == 422


@pytest.mark.parametrize(("method", "url", "status"), [
    ("get", "/api/v1/submissions/abc", 404),
    ("get", "/api/v1/submissions/99999999999999999999", 404),
    ("put", "/api/v1/assignments", 405),
    ("delete", "/api/v1/submissions/1", 405),
    ("get", "/api/v1/nothing/here", 404),
])
def test_errors_are_json(client: FlaskClient, alice: str, method: str, url: str,
                         status: int) -> None:
    response = getattr(client, method)(url, headers=bearer(alice))
    assert response.status_code == status
    assert response.is_json and set(response.get_json()) == {"error"}


def test_unexpected_failure_is_a_json_500(client: FlaskClient, alice: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import web.lookups

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(web.lookups, "assignments_for", broken)
    response = client.get("/api/v1/assignments", headers=bearer(alice))
    assert response.status_code == 500
    assert response.get_json() == {"error": "Something went wrong on our side; course staff "
                                            "have been told."}
