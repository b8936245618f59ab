"""Sending webhook deliveries: a plain class, run by the embedded worker's loop and by
each Celery worker host's periodic thread (and the ``dlgrade.deliver_webhooks`` task).

Each pending ``WebhookDelivery`` whose time has come is claimed with a conditional
UPDATE (so two senders never post the same attempt), then POSTed as JSON with::

    X-Dlgrade-Event:      submission.completed
    X-Dlgrade-Delivery:   <delivery id>   (the same on every retry: receivers dedupe on it)
    X-Dlgrade-Timestamp:  <unix seconds>
    X-Dlgrade-Signature:  sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed by the secret>

Only public addresses are posted to, checked again before each post and connected to
as checked (:mod:`tasks.netguard`; ``DLGRADE_WEBHOOK_ALLOW_PRIVATE`` and
``DLGRADE_WEBHOOK_ALLOWED_NETWORKS`` widen it), never through a proxy.
A 2xx answer marks it ``delivered``; anything else (another status, a redirect, a
timeout, a refused connection, an address refused by the guard) is retried after
``retry_seconds * 2**(attempts-1)`` (at most an hour) until ``max_attempts``, then it is
``failed`` with the last error.

A receiver verifies with :func:`verify_signature` (or the same three lines in its own
language): recompute the HMAC over the timestamp header, a dot and the raw body, compare
in constant time, and reject timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from store.db import SessionFactory
from store.leases import rowcount
from store.models import WebhookDelivery, utcnow
from tasks.netguard import AddressPolicy, Target, UnsafeURL, check_url, pinned_connect
from tasks.settings import Settings

log = logging.getLogger(__name__)

MAX_DELAY = 3600.0
BATCH = 50
ERROR_CHARS = 500


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Dlgrade-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, body: bytes, timestamp: str, signature: str, *,
                     tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver runs: True when ``signature`` (the header) signs ``body`` (the
    raw bytes received) with ``secret`` and ``timestamp`` is within ``tolerance`` s."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True)
class Response:
    status: int | None  # None: no HTTP answer (timeout, refused, DNS ...)
    error: str | None  # None on a 2xx


Poster = Callable[[str, bytes, dict[str, str], float], Response]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET elsewhere: count it as a failure."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _pinned(kind: type[http.client.HTTPConnection], target: Target
            ) -> Callable[..., http.client.HTTPConnection]:
    """``kind`` whose socket goes to ``target``'s checked addresses; the Host header and
    the TLS certificate check still use the URL's host name."""

    def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
        connection = kind(*args, **kwargs)
        setattr(connection, "_create_connection", pinned_connect(target))  # noqa: B010
        return connection

    return make


class _PinnedHTTP(urllib.request.HTTPHandler):
    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_pinned(http.client.HTTPConnection, self.target), req)


class _PinnedHTTPS(urllib.request.HTTPSHandler):
    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_pinned(http.client.HTTPSConnection, self.target), req)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float,
         policy: AddressPolicy | None = None) -> Response:
    """POST with urllib to the addresses :func:`tasks.netguard.check_url` allows (public
    ones unless ``policy`` says otherwise), without proxies or redirects; never raises
    for network or HTTP failures."""
    try:
        target = check_url(url, policy or AddressPolicy())
    except UnsafeURL as refused:
        return Response(None, f"not sent: {refused}")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects,
                                         _PinnedHTTP(target), _PinnedHTTPS(target))
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as answer:
            return Response(int(answer.status), None)
    except urllib.error.HTTPError as exc:
        return Response(exc.code, f"the endpoint answered HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Response(None, f"could not reach the endpoint: {reason}")


def guarded_poster(policy: AddressPolicy) -> Poster:
    def send(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        return post(url, body, headers, timeout, policy)

    return send


class WebhookSender:
    def __init__(self, db_factory: SessionFactory, *, timeout: float = 10.0,
                 max_attempts: int = 8, retry_seconds: float = 30.0,
                 poster: Poster | None = None, policy: AddressPolicy | None = None) -> None:
        self.db_factory = db_factory
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        # The default posts only to public addresses (tasks.netguard).
        self.poster = poster or guarded_poster(policy or AddressPolicy())

    @classmethod
    def from_settings(cls, settings: Settings, db_factory: SessionFactory) -> WebhookSender:
        return cls(db_factory, timeout=settings.webhook_timeout,
                   max_attempts=settings.webhook_max_attempts,
                   retry_seconds=settings.webhook_retry_seconds,
                   policy=AddressPolicy.from_settings(settings))

    def run_pending(self, now: datetime | None = None, batch: int = BATCH) -> int:
        """Post every delivery due by ``now`` (up to ``batch``); returns how many were
        attempted (delivered or not)."""
        now = now or utcnow()
        with self.db_factory() as db:
            due = db.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending",
                       WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(batch)
            ).all()
        return sum(1 for delivery_id in due if self.attempt(delivery_id, now))

    def backoff(self, attempts: int) -> float:
        return float(min(self.retry_seconds * 2 ** (attempts - 1), MAX_DELAY))

    def attempt(self, delivery_id: int, now: datetime) -> bool:
        """Claim and post one delivery; False when another sender has it."""
        if not self._claim(delivery_id, now):
            return False
        with self.db_factory() as db:
            delivery = db.scalars(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                                  .options(joinedload(WebhookDelivery.webhook))).one()
            url, secret, event = delivery.webhook.url, delivery.webhook.secret, delivery.event
            body = json.dumps(delivery.payload, separators=(",", ":")).encode("utf-8")
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "dlgrade-webhooks",
                   "X-Dlgrade-Event": event, "X-Dlgrade-Delivery": str(delivery_id),
                   "X-Dlgrade-Timestamp": timestamp,
                   "X-Dlgrade-Signature": sign(secret, timestamp, body)}
        answer = self.poster(url, body, headers, self.timeout)
        self._record(delivery_id, answer)
        return True

    def _claim(self, delivery_id: int, now: datetime) -> bool:
        """Push ``next_attempt_at`` past this attempt's timeout, conditionally: only one
        sender wins; a sender that dies mid-post leaves it to be retried after that."""
        lease = now + timedelta(seconds=self.timeout * 2 + 30)
        with self.db_factory() as db:
            taken = db.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                       WebhookDelivery.next_attempt_at <= now)
                .values(next_attempt_at=lease, attempts=WebhookDelivery.attempts + 1)
                .execution_options(synchronize_session=False)
            )
            db.commit()
        return rowcount(taken) == 1

    def _record(self, delivery_id: int, answer: Response) -> None:
        now = utcnow()
        with self.db_factory() as db:
            delivery = db.get(WebhookDelivery, delivery_id)
            if delivery is None:  # its webhook was deleted meanwhile
                return
            delivery.response_status = answer.status
            ok = answer.status is not None and 200 <= answer.status < 300
            if ok:
                delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
            else:
                delivery.last_error = (answer.error or "failed")[:ERROR_CHARS]
                if delivery.attempts >= self.max_attempts:
                    delivery.status = "failed"
                    log.warning("webhook delivery %s failed after %s attempts: %s",
                                delivery_id, delivery.attempts, delivery.last_error)
                else:
                    delivery.next_attempt_at = now + timedelta(
                        seconds=self.backoff(delivery.attempts))
            db.commit()
