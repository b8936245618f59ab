"""Student pages: assignments, upload, history, and a results page that follows the
grading live (``status.json``, polled by ``static/results.js``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from store import adjustments, queries
from store import progress as progress_store
from store.models import Assignment, Submission
from web import assignment_page as page_logic
from web import code_view, curves, handout, lookups
from web.access import is_course_staff
from web.auth import current_user, login_required
from web.extensions import deadlines_for
from web.formatting import use_timezone
from web.services import get_db, services
from web.uploads import KeyReused, UploadRejected, accept, new_form_key, upload_limit
from web.visibility import best, earlier_score, filtered_results, shown, student_may_see
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
    rows = [(a, best(finished.get(a.id, []), now()), deadlines_for(get_db(), a, user))
            for a in assignments]
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
        page, code = render_assignment(target, rejected.message, rejected.status,
                                       rejected.missing)
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
    if found.user_id == current_user().id and found.status in ("done", "error"):
        adjustments.mark_seen(get_db(), found.id)  # the regrade notice has been read
        get_db().commit()
    return render_template(
        "student/submission.html", s=found, view=shown(found, now(), staff=False),
        document=filtered_results(found, now(), staff=False), progress=progress(found),
        now=now(), earlier=[(h, *earlier_score(h, found, now(), staff=False))
                            for h in adjustments.history(get_db(), found.id)],
    )


@bp.post("/submissions/<int:submission_id>/choose")
@login_required
def choose(submission_id: int) -> ResponseReturnValue:
    """Make this graded submission the one that counts (where the assignment allows)."""
    found = submission_or_404(submission_id)
    if found.user_id != current_user().id:
        abort(404)
    try:
        adjustments.choose(get_db(), found.assignment, found)
    except adjustments.AdjustmentError as problem:
        get_db().rollback()
        flash(str(problem), "error")
    else:
        get_db().commit()
        flash(f"Submission {found.id} now counts for {found.assignment.title}.", "info")
    return redirect(url_for("student.assignment", assignment_id=found.assignment_id)
                    + "#submissions-heading")


@bp.get("/submissions/<int:submission_id>/status.json")
@login_required
def status(submission_id: int) -> ResponseReturnValue:
    return jsonify(progress(submission_or_404(submission_id)))


def assignment_or_404(assignment_id: int) -> Assignment:
    found = lookups.assignment_for(get_db(), current_user(), assignment_id, now())
    if found is None:
        abort(404)
    use_timezone(found.course.timezone)
    return found


def submission_or_404(submission_id: int) -> Submission:
    found = lookups.submission_for(get_db(), current_user(), submission_id)
    if found is None:
        abort(404)
    use_timezone(found.assignment.course.timezone)
    return found


def render_assignment(
    target: Assignment, error: str | None = None, code: int = 200,
    missing: Sequence[str] = (),
) -> tuple[str, int]:
    spec = lookups.spec_for(target)
    rows = queries.user_submissions(get_db(), current_user().id, target.id)
    page = render_template(
        "student/assignment.html", a=target, error=error, now=now(), spec=spec,
        upload_key=new_form_key(),
        dates=deadlines_for(get_db(), target, current_user()), missing=missing,
        history=page_logic.history(
            rows, now(), adjustments.chosen_submission(get_db(), target, current_user().id)),
        tests=page_logic.test_rows(spec, target.hidden_visible_after_due),
        today=page_logic.today(get_db(), current_user(), target, now()),
        readme=handout.readme_html(spec), starter=bool(handout.starter_files(spec)),
        limit=upload_limit(services().settings, spec),
    )
    return page, code


@bp.get("/assignments/<int:assignment_id>/starter.zip")
@login_required
def starter(assignment_id: int) -> ResponseReturnValue:
    target = assignment_or_404(assignment_id)
    body = handout.starter_zip(lookups.spec_for(target))
    if body is None:
        abort(404, description="This assignment has no starter code to download.")
    return Response(body, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{target.slug}-starter.zip"'})


def live_summary(found: Submission, live: dict[str, Any]) -> dict[str, Any]:
    """Which test is running (by number and name), the epoch, and the URL of the
    partial curve; the curves themselves only for a test the student may see."""
    view: dict[str, Any] = {"test": live.get("test"), "tests": live.get("tests"),
                            "name": live.get("name"), "epoch": live.get("epoch"),
                            "epochs": live.get("epochs")}
    if live.get("curves") and may_see_test(found, str(live.get("name", ""))):
        view["curve_url"] = url_for("student.progress_svg", submission_id=found.id,
                                    epoch=live.get("epoch"))
    return view


def may_see_test(found: Submission, name: str) -> bool:
    spec = lookups.spec_for(found.assignment)
    visibility = next((t.visibility for t in spec.tests if t.name == name), "hidden")
    staff = is_course_staff(get_db(), current_user(), found.assignment.course_id)
    return staff or student_may_see(visibility, found.assignment, now())


@bp.get("/submissions/<int:submission_id>/progress.svg")
@login_required
def progress_svg(submission_id: int) -> ResponseReturnValue:
    """The running test's training curves so far (the epochs to come left empty)."""
    found = submission_or_404(submission_id)
    live = progress_store.current(get_db(), found.id, found.attempt, found.started_at)
    if (found.status != "running" or not live or not live.get("curves")
            or not may_see_test(found, str(live.get("name", "")))):
        abort(404)
    return svg_response(curves.curves_svg(live["curves"], epochs=live.get("epochs")))


@bp.get("/submissions/<int:submission_id>/tests/<number>/curves.svg")
@login_required
def curves_image(submission_id: int, number: str) -> ResponseReturnValue:
    """A finished test's training curves, for a test this user may see."""
    found = submission_or_404(submission_id)
    staff = is_course_staff(get_db(), current_user(), found.assignment.course_id)
    view = shown(found, now(), staff=staff)
    test = next((t for t in view.tests if t.number == number and t.curves), None)
    if test is None or test.curves is None:
        abort(404)
    return svg_response(curves.curves_svg(test.curves))


def svg_response(body: bytes) -> Response:
    response = Response(body, mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = curves.IMAGE_POLICY
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


def progress(found: Submission) -> dict[str, Any]:
    """What the results page needs to follow grading; scores only once done."""
    state: dict[str, Any] = {"id": found.id, "status": found.status, "message": found.status}
    if found.status == "queued":
        state.update(waiting(get_db(), found, now(), services().alive_window()))
    elif found.status == "running":
        state["message"] = "running"
        live = progress_store.current(get_db(), found.id, found.attempt, found.started_at)
        if live:
            state["progress"] = live_summary(found, live)
    elif found.status == "done":
        view = shown(found, now(), staff=False)
        state.update(score=view.score, max_score=view.max_score, message="done")
    else:
        state.update(error=found.error, message="error")
    return state


@bp.get("/submissions/<int:submission_id>/code")
@login_required
def code(submission_id: int) -> ResponseReturnValue:
    """The student's own files as submitted, with staff's line comments."""
    found = submission_or_404(submission_id)
    files = code_view.read_files(services().archives.path(found.archive_sha256),
                                 lookups.spec_for(found.assignment).submission.top_level)
    return render_template("code.html", s=found, files=files, staff=False, error=None,
                           comments=code_view.comments_by_line(found), chosen_path="",
                           chosen_line="")
