"""CSRF protection for browser sessions: one random token per session, put in every
form (``{{ csrf_field() }}``) and checked on every state-changing request.

The API (``/api/``) is exempt: it authenticates with bearer tokens only, never with the
session cookie, so a cross-site page cannot act through it.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session
from markupsafe import Markup, escape

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXEMPT_PREFIX = "/api/"
# LTI 1.3: the LMS posts these from its own site; the OIDC state cookie and the
# single-use nonce protect them (web.lti).
EXEMPT_PATHS = frozenset({"/lti/login", "/lti/launch"})
REJECTED = "This form has expired or did not come from this site; reload the page and try again."


def init_app(app: Flask) -> None:
    app.before_request(check)
    app.jinja_env.globals["csrf_token"] = token
    app.jinja_env.globals["csrf_field"] = field


def token() -> str:
    if FIELD not in session:
        session[FIELD] = secrets.token_urlsafe(32)
    return str(session[FIELD])


def field() -> Markup:
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, escape(token()))


def check() -> None:
    if request.method in SAFE_METHODS or request.path.startswith(EXEMPT_PREFIX) \
            or request.path in EXEMPT_PATHS:
        return
    expected = session.get(FIELD)
    sent = request.headers.get(HEADER) or request.form.get(FIELD, "")
    if not expected or not hmac.compare_digest(str(expected), sent):
        abort(400, description=REJECTED)
