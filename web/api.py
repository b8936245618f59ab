"""API v1, authenticated by ``Authorization: Bearer <token>`` only (never the session
cookie, which is why it needs no CSRF token). Errors are ``{"error": sentence}``.

Every request passes, in order: the per-IP budget of failed authentications, the token,
the per-token rate limit (uploads and other writes have a budget of their own), then
the scope the view asks for (:mod:`web.scopes`). The staff views are in
:mod:`web.api_staff`; the document describing all of them in :mod:`web.openapi`.
"""

from __future__ import annotations

import logging
from typing import Any, BinaryIO, cast

from flask import Blueprint, abort, g, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response

from store.models import Assignment, Submission
from store.users import find_user, token_for
from web import api_staff, errors, lookups
from web.access import staff_course_ids
from web.api_access import (
    ID,
    api_user,
    assignment_or_404,
    course_staff,
    need,
    now,
    page,
    stamp,
    submission_or_404,
)
from web.openapi import document
from web.pagination import Page, next_cursor
from web.ratelimit import Decision
from web.services import get_db, services
from web.uploads import UploadRejected, accept
from web.visibility import filtered_results, shown
from web.waiting import waiting

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
NO_TOKEN = "Send an API token in the header 'Authorization: Bearer <token>'."
BAD_TOKEN = "That API token is not valid (it may have been revoked)."
NO_FILE = "Send the archive as the multipart form field 'file'."
TOO_MANY = "Too many requests with this token; try again in {seconds} s."
TOO_MANY_FAILURES = "Too many failed authentications from your address; try again in {seconds} s."
ONLY_OWN = "Students can list only their own submissions; leave out ?student=."
PUBLIC = {"api.openapi"}


# --- authentication, rate limits, scopes, errors ------------------------------------------


@bp.before_request
def authenticate() -> ResponseReturnValue | None:
    if request.endpoint in PUBLIC:
        return None
    address = request.remote_addr or "unknown"
    blocked = services().limiter.peek("auth", address)
    if blocked is not None and not blocked.allowed:
        return too_many(blocked, TOO_MANY_FAILURES)
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return unauthorized(NO_TOKEN, address)
    token = token_for(get_db(), raw.strip())
    if token is None:
        return unauthorized(BAD_TOKEN, address)
    g.api_token, g.api_user = token, token.user
    budget = "reads" if request.method in ("GET", "HEAD", "OPTIONS") else "writes"
    g.api_rate = services().limiter.hit(budget, f"token:{token.id}")
    if g.api_rate is not None and not g.api_rate.allowed:
        return too_many(g.api_rate, TOO_MANY)
    return None


@bp.after_request
def rate_headers(response: Response) -> Response:
    decision: Decision | None = g.get("api_rate")
    if decision is not None:
        response.headers.update(decision.headers())
    return response


@bp.errorhandler(Exception)
def on_error(error: Exception) -> ResponseReturnValue:
    """HTTP errors as JSON sentences; anything unexpected as a JSON 500, logged."""
    if isinstance(error, HTTPException):
        return errors.on_http_error(error)
    if errors.database_down(error):
        return errors.on_database_down(error)
    log.exception("API request %s %s failed", request.method, request.path)
    return jsonify(error=errors.SENTENCES[500]), 500


def unauthorized(message: str, address: str) -> ResponseReturnValue:
    failures = services().limiter.hit("auth", address)
    if failures is not None and not failures.allowed:
        return too_many(failures, TOO_MANY_FAILURES)
    return jsonify(error=message), 401, {"WWW-Authenticate": 'Bearer realm="dlgrade"'}


def too_many(decision: Decision, message: str) -> ResponseReturnValue:
    return jsonify(error=message.format(seconds=decision.reset_after)), 429, decision.headers()


# --- the document ---------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(document(request.host_url.rstrip("/")))


# --- assignments ----------------------------------------------------------------------


@bp.get("/assignments")
def assignments() -> ResponseReturnValue:
    need("assignments:read")
    found = lookups.assignments_for(get_db(), api_user(), now())
    return jsonify(assignments=[describe(a) for a in found])


@bp.get("/assignments/<slug>")
def get_assignment(slug: str) -> ResponseReturnValue:
    need("assignments:read")
    return jsonify(describe(assignment_or_404(slug)))


# --- submissions ----------------------------------------------------------------------


@bp.post("/assignments/<slug>/submissions")
def create_submission(slug: str) -> ResponseReturnValue:
    need("submissions:write")
    target = assignment_or_404(slug)
    file = request.files.get("file")
    if file is None or not file.filename:
        abort(400, description=NO_FILE)
    key = request.headers.get("Idempotency-Key")
    try:
        accepted = accept(get_db(), services().settings, api_user(), target,
                          cast(BinaryIO, file.stream), file.filename, now(), key)
    except UploadRejected as rejected:
        body: dict[str, Any] = {"error": rejected.message}
        if rejected.missing:
            body["missing"] = list(rejected.missing)
        retry = {"Retry-After": str(rejected.retry_after)} if rejected.retry_after else {}
        return jsonify(body), rejected.status, retry
    submission = accepted.submission
    if not accepted.replayed:
        services().enqueue(submission.id)  # False only delays grading: the reconciler retries
    url = url_for("api.get_submission", submission_id=submission.id, _external=True)
    body = {"id": submission.id, "status": submission.status, "url": url,
            "page": url_for("student.submission", submission_id=submission.id, _external=True)}
    headers = {"Location": url}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return jsonify(body), 202, headers


@bp.get("/assignments/<slug>/submissions")
def assignment_submissions(slug: str) -> ResponseReturnValue:
    """Staff: every submission (or ``?student=EMAIL``'s); a student: their own."""
    need("submissions:read")
    target = assignment_or_404(slug)
    wanted = page()
    user_id: int | None = api_user().id
    student = request.args.get("student", "").strip()
    if course_staff(target.course_id):
        found = find_user(get_db(), student) if student else None
        user_id = (found.id if found else -1) if student else None
    elif student and student.lower() != api_user().email:
        abort(403, description=ONLY_OWN)
    rows = lookups.submissions_page(get_db(), user_id=user_id, assignment_id=target.id,
                                    before_id=wanted.before_id, limit=wanted.limit)
    return listing(rows, wanted)


@bp.get("/submissions")
def my_submissions() -> ResponseReturnValue:
    """The token owner's own submissions, across assignments."""
    need("submissions:read")
    wanted = page()
    rows = lookups.submissions_page(get_db(), user_id=api_user().id,
                                    before_id=wanted.before_id, limit=wanted.limit)
    return listing(rows, wanted)


@bp.get(f"/submissions/<{ID}:submission_id>")
def get_submission(submission_id: int) -> ResponseReturnValue:
    need("submissions:read")
    found = submission_or_404(submission_id)
    return jsonify(result(found, staff=course_staff(found.assignment.course_id)))


def listing(rows: Any, wanted: Page) -> ResponseReturnValue:
    taught = set(get_db().scalars(staff_course_ids(api_user())))
    items = [summary(row, staff=row.assignment.course_id in taught) for row in rows]
    return jsonify(submissions=items,
                   next_cursor=next_cursor([row.id for row in rows], wanted.limit))


# --- representations ------------------------------------------------------------------


def summary(found: Submission, *, staff: bool) -> dict[str, Any]:
    """A list item: the score as this audience sees it, no per-test results."""
    view = shown(found, now(), staff=staff) if found.status == "done" else None
    return {
        "id": found.id,
        "assignment": found.assignment.slug,
        "course": found.assignment.course.slug,
        "student": found.user.email,
        "status": found.status,
        "score": view.score if view else None,
        "max_score": view.max_score if view else None,
        "late_days": found.late_days,
        "created_at": found.created_at.isoformat(),
        "finished_at": stamp(found.finished_at),
        "url": url_for("api.get_submission", submission_id=found.id, _external=True),
    }


def result(found: Submission, *, staff: bool) -> dict[str, Any]:
    """Scores follow the visibility rules of web.visibility (staff see everything)."""
    done = found.status == "done"
    view = shown(found, now(), staff=staff) if done else None
    return {
        "id": found.id,
        "assignment": found.assignment.slug,
        "status": found.status,
        "score": view.score if view else None,
        "max_score": view.max_score if view else None,
        "late_days": found.late_days,
        "late_penalty": view.penalty if view else None,
        "withheld_tests": view.withheld_tests if view else None,
        "results": filtered_results(found, now(), staff=staff) if done else None,
        "error": found.error if found.status == "error" else None,
        "created_at": found.created_at.isoformat(),
        **waiting(get_db(), found, now(), services().alive_window()),
    }


def describe(assignment: Assignment) -> dict[str, Any]:
    return {
        "slug": assignment.slug, "course": assignment.course.slug, "title": assignment.title,
        "release_at": stamp(assignment.release_at), "due_at": stamp(assignment.due_at),
        "late_due_at": stamp(assignment.late_due_at),
        "late_penalty_per_day": assignment.late_penalty_per_day,
        "daily_limit": assignment.daily_limit,
        "submissions": url_for("api.create_submission", slug=assignment.slug, _external=True),
    }


api_staff.add_routes(bp)  # the staff views, on the same authentication and limits
