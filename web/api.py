"""API v1, authenticated by ``Authorization: Bearer <token>`` only (never the session
cookie, which is why it needs no CSRF token). Errors are ``{"error": sentence}``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from flask import Blueprint, abort, g, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from store.models import Assignment, Submission, User
from store.users import user_for_token
from web import lookups
from web.services import get_db, services
from web.uploads import UploadRejected, accept_upload
from web.visibility import filtered_results, shown

bp = Blueprint("api", __name__, url_prefix="/api/v1")
NO_TOKEN = "Send an API token in the header 'Authorization: Bearer <token>'."
BAD_TOKEN = "That API token is not valid (it may have been revoked)."
NO_FILE = "Send the archive as the multipart form field 'file'."


def now() -> datetime:
    return datetime.now(UTC)


@bp.before_request
def authenticate() -> ResponseReturnValue | None:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return unauthorized(NO_TOKEN)
    user = user_for_token(get_db(), raw.strip())
    if user is None:
        return unauthorized(BAD_TOKEN)
    g.api_user = user
    return None


def unauthorized(message: str) -> ResponseReturnValue:
    return jsonify(error=message), 401, {"WWW-Authenticate": 'Bearer realm="dlgrade"'}


def api_user() -> User:
    return cast(User, g.api_user)


@bp.get("/assignments")
def assignments() -> ResponseReturnValue:
    found = lookups.assignments_for(get_db(), api_user(), now())
    return jsonify(assignments=[describe(a) for a in found])


@bp.post("/assignments/<slug>/submissions")
def create_submission(slug: str) -> ResponseReturnValue:
    target = assignment_or_404(slug)
    file = request.files.get("file")
    if file is None or not file.filename:
        abort(400, description=NO_FILE)
    try:
        submission = accept_upload(get_db(), services().settings, api_user(), target,
                                   cast(BinaryIO, file.stream), file.filename, now())
    except UploadRejected as rejected:
        return jsonify(error=rejected.message), rejected.status
    services().enqueue(submission.id)  # False only delays grading: the reconciler retries
    url = url_for("api.get_submission", submission_id=submission.id, _external=True)
    body = {"id": submission.id, "status": submission.status, "url": url,
            "page": url_for("student.submission", submission_id=submission.id, _external=True)}
    return jsonify(body), 202, {"Location": url}


@bp.get("/submissions/<int:submission_id>")
def get_submission(submission_id: int) -> ResponseReturnValue:
    found = lookups.submission_for(get_db(), api_user(), submission_id)
    if found is None:
        abort(404, description=f"There is no submission {submission_id} that you can see.")
    return jsonify(result(found, staff=api_user().is_staff))


def assignment_or_404(slug: str) -> Assignment:
    course = request.args.get("course") or None
    try:
        found = lookups.assignment_by_slug(get_db(), api_user(), slug, course, now())
    except lookups.AmbiguousSlug as ambiguous:
        abort(400, description=str(ambiguous))
    if found is None:
        where = f"course {course!r}" if course else "your courses"
        abort(404, description=f"There is no assignment {slug!r} in {where}.")
    return found


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
    }


def describe(assignment: Assignment) -> dict[str, Any]:
    def stamp(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "slug": assignment.slug, "course": assignment.course.slug, "title": assignment.title,
        "release_at": stamp(assignment.release_at), "due_at": stamp(assignment.due_at),
        "late_due_at": stamp(assignment.late_due_at),
        "submissions": url_for("api.create_submission", slug=assignment.slug, _external=True),
    }
