"""Student pages: assignments, upload, history, and a results page that follows the
grading live (``status.json``, polled by ``static/results.js``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from store import queries
from store.models import Assignment, Submission
from web import lookups
from web.auth import current_user, login_required
from web.extensions import deadlines_for
from web.services import get_db, services
from web.uploads import KeyReused, UploadRejected, accept, new_form_key, upload_limit
from web.visibility import best, filtered_results, shown
from web.waiting import waiting

bp = Blueprint("student", __name__)


def now() -> datetime:
    return datetime.now(UTC)


@bp.get("/")
@login_required
def index() -> ResponseReturnValue:
    user = current_user()
    assignments = lookups.assignments_for(get_db(), user, now())
    finished = lookups.submissions_by_assignment(get_db(), user, [a.id for a in assignments])
    rows = [(a, best(finished.get(a.id, []), now())) for a in assignments]
    return render_template("student/index.html", rows=rows, now=now())


@bp.get("/assignments/<int:assignment_id>")
@login_required
def assignment(assignment_id: int) -> ResponseReturnValue:
    return render_assignment(assignment_or_404(assignment_id))


@bp.post("/assignments/<int:assignment_id>/submissions")
@login_required
def upload(assignment_id: int) -> ResponseReturnValue:
    target = assignment_or_404(assignment_id)
    file = request.files.get("file")
    if file is None or not file.filename:
        return render_assignment(target, "Choose a .tar, .tar.gz or .zip file to upload.", 400)
    stream = cast(BinaryIO, file.stream)
    # The form's key makes a resent form (a double click, a reload after a dropped
    # answer) find the first upload; another file sent from an old page is a new upload.
    key = request.form.get("idempotency_key") or None
    try:
        try:
            accepted = accept(get_db(), services().settings, current_user(), target,
                              stream, file.filename, now(), key)
        except KeyReused:
            file.stream.seek(0)
            accepted = accept(get_db(), services().settings, current_user(), target,
                              stream, file.filename, now())
    except UploadRejected as rejected:
        page, code = render_assignment(target, rejected.message, rejected.status)
        retry = {"Retry-After": str(rejected.retry_after)} if rejected.retry_after else {}
        return page, code, retry
    submission = accepted.submission
    if not accepted.replayed:
        services().enqueue(submission.id)  # False only delays grading: the reconciler retries
    flash(f"Received {submission.filename}; it is in the queue.", "info")
    return redirect(url_for("student.submission", submission_id=submission.id))


@bp.get("/submissions/<int:submission_id>")
@login_required
def submission(submission_id: int) -> ResponseReturnValue:
    found = submission_or_404(submission_id)
    return render_template(
        "student/submission.html", s=found, view=shown(found, now(), staff=False),
        document=filtered_results(found, now(), staff=False), progress=progress(found),
        now=now(),
    )


@bp.get("/submissions/<int:submission_id>/status.json")
@login_required
def status(submission_id: int) -> ResponseReturnValue:
    return jsonify(progress(submission_or_404(submission_id)))


def assignment_or_404(assignment_id: int) -> Assignment:
    found = lookups.assignment_for(get_db(), current_user(), assignment_id, now())
    if found is None:
        abort(404)
    return found


def submission_or_404(submission_id: int) -> Submission:
    found = lookups.submission_for(get_db(), current_user(), submission_id)
    if found is None:
        abort(404)
    return found


def render_assignment(
    target: Assignment, error: str | None = None, code: int = 200
) -> tuple[str, int]:
    page = render_template(
        "student/assignment.html", a=target, error=error, now=now(), upload_key=new_form_key(),
        dates=deadlines_for(get_db(), target, current_user()),
        history=queries.user_submissions(get_db(), current_user().id, target.id),
        limit=upload_limit(services().settings, lookups.spec_for(target)),
    )
    return page, code


def progress(found: Submission) -> dict[str, Any]:
    """What the results page needs to follow grading; scores only once done."""
    state: dict[str, Any] = {"id": found.id, "status": found.status, "message": found.status}
    if found.status == "queued":
        state.update(waiting(get_db(), found, now(), services().alive_window()))
    elif found.status == "running":
        state["message"] = "running"
    elif found.status == "done":
        view = shown(found, now(), staff=False)
        state.update(score=view.score, max_score=view.max_score, message="done")
    else:
        state.update(error=found.error, message="error")
    return state
