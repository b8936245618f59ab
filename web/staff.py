"""Course staff pages: the dashboard of every submission, any submission in full
(hidden tests, tracebacks, the archive) and regrading."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask.typing import ResponseReturnValue

from store import queries
from store.models import Assignment, Submission
from web import lookups
from web.auth import current_user, staff_required
from web.regrade import CannotRegrade, requeue
from web.services import get_db, services
from web.visibility import shown

bp = Blueprint("staff", __name__, url_prefix="/staff")


def now() -> datetime:
    return datetime.now(UTC)


@bp.get("/")
@staff_required
def index() -> ResponseReturnValue:
    assignments = lookups.staff_assignments(get_db(), current_user())
    counts = {a.id: lookups.status_counts(get_db(), a) for a in assignments}
    return render_template("staff/index.html", assignments=assignments, counts=counts,
                           queue=queries.queue_stats(get_db(), now()), now=now())


@bp.get("/assignments/<int:assignment_id>")
@staff_required
def dashboard(assignment_id: int) -> ResponseReturnValue:
    target = assignment_or_404(assignment_id)
    rows = queries.assignment_submissions(get_db(), target.id)
    return render_template("staff/dashboard.html", a=target, rows=rows,
                           counts=lookups.status_counts(get_db(), target), now=now())


@bp.get("/submissions/<int:submission_id>")
@staff_required
def submission(submission_id: int) -> ResponseReturnValue:
    found = submission_or_404(submission_id)
    return render_template("staff/submission.html", s=found, view=shown(found, now(), staff=True),
                           now=now())


@bp.get("/submissions/<int:submission_id>/archive")
@staff_required
def archive(submission_id: int) -> ResponseReturnValue:
    found = submission_or_404(submission_id)
    path = services().archives.path(found.archive_sha256)
    if not path.is_file():
        abort(404, description="The archive of this submission is no longer stored.")
    return send_file(path, as_attachment=True, download_name=found.filename or f"{found.id}.tar",
                     mimetype="application/octet-stream")


@bp.post("/submissions/<int:submission_id>/regrade")
@staff_required
def regrade(submission_id: int) -> ResponseReturnValue:
    found = submission_or_404(submission_id)
    try:
        requeue(get_db(), found)
    except CannotRegrade as busy:
        flash(str(busy), "error")
    else:
        services().enqueue(found.id)
        flash(f"Submission {found.id} is back in the queue.", "info")
    return redirect(url_for("staff.submission", submission_id=found.id))


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
