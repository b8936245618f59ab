"""Limits on failed browser logins (:mod:`web.auth`), counted by the API's limiter
(:mod:`web.ratelimit`: in Redis when the service has one, else in memory).

Only failures count; a successful login never does. The budgets, per
``DLGRADE_LOGIN_RATE_WINDOW`` seconds (15 minutes):

- per e-mail (``DLGRADE_LOGIN_RATE_EMAIL``, 10): guessing one account's password, from
  however many addresses;
- per address (``DLGRADE_LOGIN_RATE_ADDRESS``, 100): one address trying many accounts
  (higher, since a whole campus may share one address);
- per browser that has logged in to that account before (the same limit as per e-mail):
  such a browser carries a signed cookie and is counted on its own budget *instead* of
  the two above. So a stranger who uses up an account's budget locks out only browsers
  new to the account, never its owner's usual one, and only until the window ends.

Over a budget, the login page answers 429 with ``Retry-After`` without checking the
password. E-mails are counted under a keyed hash, so no address is written to Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from web.ratelimit import Decision, RateLimiter

DEVICE_COOKIE = "dlgrade_login_device"
DEVICE_DAYS = 30
TOO_MANY = ("Too many failed attempts to log in; please wait {wait} before trying again "
            "(course staff can reset a forgotten password).")


@dataclass(frozen=True)
class Attempt:
    """Who is trying to log in: the budgets this attempt is counted on."""

    email_key: str
    device: str | None  # the id of a browser that logged in to this account before
    keys: tuple[tuple[str, str], ...]  # (budget, identity)


def attempt(secret: str, email: str, address: str | None, cookie: str | None) -> Attempt:
    email_key = hmac.new(secret.encode(), email.strip().lower().encode(),
                         hashlib.sha256).hexdigest()[:32]
    device = known_device(secret, cookie, email_key)
    if device is not None:
        return Attempt(email_key, device, (("login_device", device),))
    return Attempt(email_key, None, (("login_email", email_key),
                                     ("login_address", address or "unknown")))


def blocked(limiter: RateLimiter, tried: Attempt) -> Decision | None:
    """The exhausted budget that refuses this attempt, if any (nothing is counted)."""
    for budget, identity in tried.keys:
        decision = limiter.peek(budget, identity)
        if decision is not None and not decision.allowed:
            return decision
    return None


def failed(limiter: RateLimiter, tried: Attempt) -> None:
    for budget, identity in tried.keys:
        limiter.hit(budget, identity)


def refusal(decision: Decision) -> str:
    minutes = math.ceil(decision.reset_after / 60)
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}" if decision.reset_after > 60 \
        else f"{decision.reset_after} seconds"
    return TOO_MANY.format(wait=wait)


# --- the cookie of a browser that has logged in -----------------------------------------


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="dlgrade-login-device")


def known_device(secret: str, cookie: str | None, email_key: str) -> str | None:
    """The browser's id when ``cookie`` is ours, recent, and for this e-mail."""
    if not cookie:
        return None
    try:
        value = _serializer(secret).loads(cookie, max_age=DEVICE_DAYS * 86400)
    except BadSignature:  # forged, for another secret, or expired
        return None
    if not isinstance(value, dict) or value.get("e") != email_key:
        return None
    device = value.get("d")
    return device if isinstance(device, str) else None


def device_cookie(secret: str, tried: Attempt) -> str:
    """The cookie to set after a successful login (keeping the browser's id)."""
    device = tried.device or secrets.token_urlsafe(16)
    return _serializer(secret).dumps({"e": tried.email_key, "d": device})
