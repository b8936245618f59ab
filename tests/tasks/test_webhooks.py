"""tasks/webhooks.py and store/webhooks.py: deliveries are written with the result (one
transaction), posted signed to a real HTTP server on 127.0.0.1, retried with back-off
and finally marked failed; receivers verify with verify_signature. The receivers are
local, so the senders here allow private addresses (LOCAL) unless a test is about the
guard (tasks/netguard.py) refusing them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from grader.outcomes import Outcome
from grader.results import GradingResult
from grader.results import TestResult as OneTest  # "Test*" names would be collected
from store import leases
from store.db import SessionFactory
from store.models import Webhook, WebhookDelivery, utcnow
from store.webhooks import create_webhook
from tasks import netguard
from tasks.celery_app import make_celery
from tasks.embedded import EmbeddedWorker
from tasks.netguard import AddressPolicy
from tasks.queueing import WEBHOOKS_TASK
from tasks.webhooks import WebhookSender, sign, verify_signature
from tests.services import World, make_settings

LOCAL = AddressPolicy(allow_private=True)


class Receiver:
    """A tiny HTTP server on 127.0.0.1 answering ``status`` (after ``delay`` s) and
    keeping every request it got."""

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), body))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def world(db_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(db_factory, tmp_path / "data")


def hook(world: World, url: str, active: bool = True) -> Webhook:
    with world.db_factory() as db:
        found = create_webhook(db, world.course_id, url)
        found.active = active
        db.commit()
        return found


def finished(world: World, worker: str = "w1") -> int:
    """A submission graded to the end through the claim protocol (7 of 10 points,
    stored as the worker stores it: dlgrade's record)."""
    submission_id = world.submission(world.assignment(), b"archive")
    record = GradingResult("hw", [OneTest("t", "1", 10.0, 7.0, Outcome.FAILED, "")],
                           1.0).to_record()
    with world.db_factory() as db:
        claim = leases.claim(db, submission_id, worker, 60, 3)
        assert leases.finish(db, submission_id, claim.attempt, worker,
                             {"status": "done", "score": 7.0, "max_score": 10.0,
                              "results": record}, [])
    return submission_id


def deliveries(world: World) -> list[WebhookDelivery]:
    with world.db_factory() as db:
        return list(db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_finish_records_one_delivery_per_active_webhook(world: World) -> None:
    hook(world, "http://127.0.0.1:9/a")
    hook(world, "http://127.0.0.1:9/b", active=False)
    submission_id = finished(world)
    [delivery] = deliveries(world)
    assert (delivery.status, delivery.submission_id, delivery.event) == \
        ("pending", submission_id, "submission.completed")
    body: Any = delivery.payload
    assert body["submission"]["status"] == "done" and body["submission"]["score"] == 7.0


def test_no_delivery_when_the_result_is_not_stored(world: World) -> None:
    hook(world, "http://127.0.0.1:9/a")
    submission_id = world.submission(world.assignment(), b"archive")
    with world.db_factory() as db:
        claim = leases.claim(db, submission_id, "w1", 60, 3)
        assert not leases.finish(db, submission_id, claim.attempt, "someone-else",
                                 {"status": "done"}, [])
    assert deliveries(world) == []


def test_giving_up_is_an_event_too(world: World) -> None:
    hook(world, "http://127.0.0.1:9/a")
    submission_id = world.submission(world.assignment(), b"archive", attempt=3,
                                     status="queued")
    with world.db_factory() as db:
        assert leases.claim(db, submission_id, "w1", 60, 3).status == "exhausted"
    [delivery] = deliveries(world)
    assert delivery.payload["submission"]["status"] == "error"  # type: ignore[index]


def test_sender_posts_signed_json(world: World, receiver: Receiver) -> None:
    secret = hook(world, receiver.url).secret
    finished(world)
    assert WebhookSender(world.db_factory, policy=LOCAL).run_pending() == 1
    [(headers, body)] = receiver.requests
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Dlgrade-Event"] == "submission.completed"
    assert headers["X-Dlgrade-Delivery"] == str(deliveries(world)[0].id)
    assert verify_signature(secret, body, headers["X-Dlgrade-Timestamp"],
                            headers["X-Dlgrade-Signature"])
    assert json.loads(body)["submission"]["score"] == 7.0
    [delivery] = deliveries(world)
    assert (delivery.status, delivery.response_status, delivery.attempts) == ("delivered", 200, 1)
    assert WebhookSender(world.db_factory, policy=LOCAL).run_pending() == 0  # not sent twice


def test_failures_back_off_then_fail(world: World, receiver: Receiver) -> None:
    receiver.status = 500
    hook(world, receiver.url)
    finished(world)
    sender = WebhookSender(world.db_factory, max_attempts=3, retry_seconds=30, policy=LOCAL)
    before = utcnow()
    assert sender.run_pending() == 1
    [delivery] = deliveries(world)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error == "the endpoint answered HTTP 500"
    assert delivery.next_attempt_at is not None
    assert timedelta(seconds=29) < delivery.next_attempt_at - before < timedelta(seconds=32)
    assert sender.run_pending() == 0  # not due yet
    later = utcnow() + timedelta(seconds=31)
    assert sender.run_pending(now=later) == 1
    second = deliveries(world)[0]
    assert second.next_attempt_at is not None
    assert second.next_attempt_at - utcnow() > timedelta(seconds=59)  # doubled
    assert sender.run_pending(now=utcnow() + timedelta(hours=1)) == 1
    [last] = deliveries(world)
    assert (last.status, last.attempts, last.response_status) == ("failed", 3, 500)
    assert len(receiver.requests) == 3
    assert sender.backoff(1) == 30 and sender.backoff(4) == 240 and sender.backoff(20) == 3600


def test_timeouts_and_refused_connections_are_retried(world: World,
                                                      receiver: Receiver) -> None:
    receiver.delay = 1.0
    hook(world, receiver.url)
    hook(world, "http://127.0.0.1:9/nobody-listens")
    finished(world)
    assert WebhookSender(world.db_factory, timeout=0.2, policy=LOCAL).run_pending() == 2
    errors = sorted(d.last_error or "" for d in deliveries(world))
    assert all(e.startswith("could not reach the endpoint") for e in errors)
    assert any("timed out" in e for e in errors)
    assert all(d.status == "pending" for d in deliveries(world))


def test_verify_signature_refuses_forgeries() -> None:
    body, now = b'{"a":1}', 1_700_000_000
    stamp = str(now)
    good = sign("whsec_k", stamp, body)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert verify_signature("whsec_k", body, stamp, good, now=now + 10)
    assert not verify_signature("whsec_other", body, stamp, good, now=now)
    assert not verify_signature("whsec_k", b'{"a":2}', stamp, good, now=now)
    assert not verify_signature("whsec_k", body, stamp, good, now=now + 3600)  # replayed
    assert not verify_signature("whsec_k", body, "not-a-time", good, now=now)


def test_embedded_worker_sends_webhooks(world: World, receiver: Receiver, tmp_path: Path) -> None:
    hook(world, receiver.url)
    finished(world)
    settings = make_settings(tmp_path, "sqlite://", webhook_allow_private="true")
    worker = EmbeddedWorker(settings, world.db_factory, job=object())  # type: ignore[arg-type]
    assert worker.deliver_webhooks() == 1
    assert deliveries(world)[0].status == "delivered"


def test_celery_has_the_webhook_task(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "sqlite://", embedded="false", secret_key="long-secret",
                             broker_url="redis://127.0.0.1:6379/0", webhook_interval=5)
    app = make_celery(settings)
    assert WEBHOOKS_TASK in app.tasks
    assert app.conf.beat_schedule["deliver-webhooks"] == {"task": WEBHOOKS_TASK, "schedule": 5.0}


# --- the address guard at send time ------------------------------------------------------


def test_private_addresses_are_not_posted_to_by_default(world: World, receiver: Receiver,
                                                        tmp_path: Path) -> None:
    hook(world, receiver.url)  # straight into the table, past the registration check
    finished(world)
    settings = make_settings(tmp_path, "sqlite://", webhook_max_attempts=1)  # the default rule
    assert WebhookSender.from_settings(settings, world.db_factory).run_pending() == 1
    assert receiver.requests == []
    [delivery] = deliveries(world)
    assert (delivery.status, delivery.response_status) == ("failed", None)
    assert delivery.last_error == ("not sent: Webhooks may only post to public addresses: "
                                   "127.0.0.1 is a loopback address.")


def test_allowed_networks_reach_the_receiver(world: World, receiver: Receiver,
                                             tmp_path: Path) -> None:
    hook(world, receiver.url)
    finished(world)
    settings = make_settings(tmp_path, "sqlite://", webhook_allowed_networks="127.0.0.0/8")
    assert WebhookSender.from_settings(settings, world.db_factory).run_pending() == 1
    assert len(receiver.requests) == 1 and deliveries(world)[0].status == "delivered"


def test_dns_is_checked_again_at_send_time(world: World, receiver: Receiver,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that was public at registration and now resolves to an internal address."""
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["10.0.0.7"])
    hook(world, "https://lms.example/hook")
    finished(world)
    WebhookSender(world.db_factory, policy=AddressPolicy(), max_attempts=1).run_pending()
    [delivery] = deliveries(world)
    assert delivery.last_error == ("not sent: Webhooks may only post to public addresses: "
                                   "lms.example resolves to 10.0.0.7, which is a private address.")


def test_the_post_connects_to_the_checked_address(world: World, receiver: Receiver,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No second lookup between the check and the connection (DNS rebinding): the name
    exists only in the resolver the guard used, yet the receiver gets the post, with the
    name in its Host header."""
    lookups: list[str] = []

    def once(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(netguard, "resolve", once)
    port = receiver.server.server_port
    hook(world, f"http://hooks.internal.test:{port}/hook")
    finished(world)
    policy = AddressPolicy(allowed_networks=(netguard.ipaddress.ip_network("127.0.0.1/32"),))
    assert WebhookSender(world.db_factory, policy=policy).run_pending() == 1
    [(headers, _)] = receiver.requests
    assert headers["Host"] == f"hooks.internal.test:{port}"
    assert lookups == ["hooks.internal.test"]
    assert deliveries(world)[0].status == "delivered"
