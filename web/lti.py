"""LTI 1.3 tool endpoints (docs/lti.md gives the URLs to paste into the LMS):

* ``/lti/login`` — OIDC third-party login initiation (GET or POST from the LMS): checks
  the issuer and client id against a registered platform, sets the state cookie and the
  browser cookie, stores a fresh nonce, and redirects to the LMS's authorization URL
  with dlgrade's own launch URL as ``redirect_uri`` (never one the request names).
* ``/lti/launch`` — the LMS posts the signed ``id_token`` here; it is validated
  (:mod:`web.lti_tool`), then mapped: account, course and role, assignment
  (:mod:`store.lti`). The browser then follows a one-time entry link (two minutes,
  single use) as a first-party, top-level page, which starts the dlgrade session: a
  session cookie set inside the LMS's frame would not survive (third-party cookies).
* ``/lti/enter/<token>`` — that entry link.
* ``/lti/jwks`` — the tool's public key set.
* ``/lti/links/<id>`` — course staff choose the assignment of a new LMS link.

The login and launch requests come from the LMS's site, so they are exempt from the
session CSRF token (web.csrf); the OIDC state cookie and the single-use nonce protect
them instead.
"""

from __future__ import annotations

import secrets

from flask import (
    Blueprint,
    Flask,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from pylti1p3.contrib.flask.oidc_login import FlaskOIDCLogin
from pylti1p3.exception import LtiException, OIDCException
from sqlalchemy import select
from werkzeug.wrappers.response import Response as BaseResponse

from store import lti as lti_store
from store import lti_scores, sessions
from store.lti_models import LtiContext, LtiPlatform, LtiResourceLink
from store.models import Assignment, User, utcnow
from tasks.lti_client import LmsError, TimeoutSession
from tasks.lti_keys import ToolKey, load_key
from web.auth import SESSION_KEY, current_user, login_required, safe_next
from web.lti_tool import MessageLaunch, parts
from web.services import get_db, services

bp = Blueprint("lti", __name__, url_prefix="/lti")
CSRF_EXEMPT = ("/lti/login", "/lti/launch")
ENTER_SECONDS = 120
ENTER_PREFIX = "enter:"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
SYNC_EVERY_SECONDS = 3600


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def tool_key() -> ToolKey:
    return load_key(services().settings)


def refuse(message: str, status: int = 400) -> ResponseReturnValue:
    get_db().rollback()
    return render_template("lti/error.html", message=message), status


@bp.route("/login", methods=("GET", "POST"))
def login() -> ResponseReturnValue:
    db = get_db()
    flask_request, config, storage, cookies = parts(db, tool_key())
    oidc = FlaskOIDCLogin(flask_request, config, cookie_service=cookies,
                          launch_data_storage=storage)
    try:
        response = oidc.redirect(url_for("lti.launch", _external=True))
    except (OIDCException, LtiException) as exc:
        return refuse(f"This LMS is not registered with dlgrade ({exc}).")
    db.commit()
    return response  # type: ignore[no-any-return]


@bp.post("/launch")
def launch() -> ResponseReturnValue:
    db = get_db()
    settings = services().settings
    flask_request, config, storage, cookies = parts(db, tool_key())
    try:
        message = MessageLaunch(flask_request, config, cookie_service=cookies,
                                launch_data_storage=storage,
                                requests_session=TimeoutSession(settings.lti_timeout,
                                                                settings.lti_allow_http))
        body = dict(message.get_launch_data())
        if not message.is_resource_launch():
            return refuse("dlgrade only takes resource link launches (no deep linking).")
        target, user = provision(message.platform(), body)
    except (LtiException, LmsError) as exc:
        return refuse(f"The launch could not be verified: {exc}", 403)
    except lti_store.LtiError as exc:
        return refuse(str(exc), 403)
    token = secrets.token_urlsafe(32)
    lti_store.put_state(db, ENTER_PREFIX + token, {"user_id": user.id, "next": target},
                        ENTER_SECONDS)
    db.commit()
    return entry_page(url_for("lti.enter", token=token), body)


def entry_page(link: str, body: dict[str, object]) -> BaseResponse:
    presentation = body.get(CLAIM + "launch_presentation")
    window = isinstance(presentation, dict) and presentation.get("document_target") == "window"
    if window:
        response = redirect(link, 303)
    else:
        response = BaseResponse(render_template("lti/enter.html", link=link))
        # Only this page may be framed by the LMS; it holds nothing but the link.
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors *")
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def provision(platform: LtiPlatform, body: dict[str, object]) -> tuple[str, User]:
    """The validated launch in dlgrade's terms; returns the page to land on and the user."""
    db = get_db()
    roles = body.get(CLAIM + "roles")
    role = lti_store.course_role([str(r) for r in roles] if isinstance(roles, list) else [])
    if role is None:
        raise lti_store.LtiError("Your role in this LMS course gives no access to dlgrade.")
    person = lti_store.Person(str(body.get("sub") or ""), str(body.get("email") or ""),
                              str(body.get("name") or ""))
    user = lti_store.ensure_user(db, platform, person)
    custom = _dict(body.get(CLAIM + "custom"))
    context_claim, nrps, ags = (_dict(body.get(CLAIM + "context")), _dict(body.get(NRPS_CLAIM)),
                                _dict(body.get(AGS_CLAIM)))
    context = lti_store.ensure_context(db, platform, lti_store.ContextClaim(
        str(context_claim.get("id") or ""), str(context_claim.get("title") or ""),
        str(context_claim.get("label") or ""), _url(nrps.get("context_memberships_url")),
        _url(ags.get("lineitems"))), user, role, str(custom.get("dlgrade_course") or ""))
    lti_store.enroll(db, user, context.course, role)
    link_claim = _dict(body.get(CLAIM + "resource_link"))
    scopes = ags.get("scope")
    link = lti_store.ensure_link(db, context, lti_store.LinkClaim(
        str(link_claim.get("id") or ""), str(link_claim.get("title") or ""),
        _url(ags.get("lineitem")),
        tuple(str(s) for s in scopes) if isinstance(scopes, list) else ()),
        str(custom.get("dlgrade_assignment") or ""))
    if role == "staff":
        _maybe_request_sync(context)
        if link.assignment_id is None:
            return url_for("lti.choose", link_id=link.id), user
        lti_scores.flag_link(db, link)
        return url_for("staff.dashboard", assignment_id=link.assignment_id), user
    if link.assignment_id is None:
        raise lti_store.LtiError("This link is not set up yet: your instructor needs to "
                                 "open it once and choose its dlgrade assignment.")
    lti_scores.mark_user(db, link, user.id)
    return url_for("student.assignment", assignment_id=link.assignment_id), user


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _url(value: object) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    lti_store.check_url(value, "service URL in the launch", services().settings.lti_allow_http)
    return value


def _maybe_request_sync(context: LtiContext) -> None:
    if not context.memberships_url or context.sync_requested_at is not None:
        return
    if context.synced_at is None or \
            (utcnow() - context.synced_at).total_seconds() > SYNC_EVERY_SECONDS:
        context.sync_requested_at = utcnow()


@bp.get("/enter/<token>")
def enter(token: str) -> ResponseReturnValue:
    db = get_db()
    found = lti_store.take_state(db, ENTER_PREFIX + token) if len(token) < 100 else None
    user = db.get(User, found.get("user_id")) if isinstance(found, dict) else None
    if user is None or not isinstance(found, dict):
        return refuse("This dlgrade link has expired or was already used; open dlgrade "
                      "from your LMS again.", 410)
    session.clear()  # a fresh session (and CSRF token), as at a password login
    session[SESSION_KEY] = sessions.start_session(
        db, user, user_agent=request.user_agent.string, address=request.remote_addr or "")
    db.commit()
    session.permanent = True
    response = redirect(safe_next(str(found.get("next") or "")))
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/jwks")
def jwks() -> ResponseReturnValue:
    return tool_key().jwks(), 200, {"Cache-Control": "public, max-age=300"}


@bp.route("/links/<int:link_id>", methods=("GET", "POST"))
@login_required
def choose(link_id: int) -> ResponseReturnValue:
    db = get_db()
    link = db.get(LtiResourceLink, link_id)
    if link is None:
        abort(404)
    course_id = link.context.course_id
    if not lti_store.is_course_staff(db, current_user(), course_id):
        abort(403, description="Only this course's staff can set up its LMS links.")
    assignments = db.scalars(select(Assignment).where(Assignment.course_id == course_id)
                             .order_by(Assignment.title)).all()
    error = None
    if request.method == "POST":
        try:
            lti_store.link_assignment(db, link, int(request.form.get("assignment_id") or 0))
        except (ValueError, lti_store.LtiError) as exc:
            error = str(exc) if isinstance(exc, lti_store.LtiError) else "Choose an assignment."
        else:
            lti_scores.flag_link(db, link)
            db.commit()
            return redirect(url_for("staff.dashboard", assignment_id=link.assignment_id))
    return render_template("lti/choose.html", link=link, assignments=assignments,
                           error=error), 400 if error else 200
