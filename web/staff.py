"""Course staff pages: each assignment's dashboard (charts, live queue, the per-student
table, extensions, regrade all, the CSV gradebook), any submission in full (hidden
tests, tracebacks, the archive) and regrading. The logic is in ``web.dashboard``,
``web.gradebook``, ``web.extensions`` and ``web.regrade``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from markupsafe import Markup
from sqlalchemy import select

from grader.spec import SpecError
from store import adjustments, queries
from store.models import Assignment, Submission, User
from web import (
    bundle,
    code_view,
    courses,
    extensions,
    gradebook,
    lookups,
    sheets,
    similarity,
    staff_assignments,
    workers,
)
from web import dashboard as figures
from web.auth import current_user, staff_required
from web.formatting import use_timezone, utc
from web.regrade import SCOPES, CannotRegrade, requeue, requeue_all
from web.services import get_db, services
from web.visibility import earlier_score, shown

bp = Blueprint("staff", __name__, url_prefix="/staff")
RECENT = 50  # submissions listed under the dashboard
EXTENSION_FIELDS = ("email", "due_at", "late_due_at", "reason")


def now() -> datetime:
    return datetime.now(UTC)


@bp.get("/")
@staff_required
def index() -> ResponseReturnValue:
    assignments = lookups.staff_assignments(get_db(), current_user())
    counts = {a.id: lookups.status_counts(get_db(), a) for a in assignments}
    queue = queries.queue_stats(get_db(), now())
    return render_template("staff/index.html", assignments=assignments, counts=counts,
                           queue=queue, now=now(),
                           courses=lookups.staff_courses(get_db(), current_user()),
                           workers=workers.state(get_db(), now(), queue["queued"],
                                                 services().alive_window()))


@bp.get("/assignments/<int:assignment_id>")
@staff_required
def dashboard(assignment_id: int) -> ResponseReturnValue:
    return render_dashboard(assignment_or_404(assignment_id))


@bp.get("/assignments/<int:assignment_id>/live.json")
@staff_required
def live(assignment_id: int) -> ResponseReturnValue:
    return jsonify(figures.live(get_db(), assignment_or_404(assignment_id), now(),
                                        services().alive_window()))


@bp.get("/assignments/<int:assignment_id>/gradebook.csv")
@staff_required
def gradebook_csv(assignment_id: int) -> ResponseReturnValue:
    target = assignment_or_404(assignment_id)
    body = sheets.sheet_csv(sheets.build_sheet(get_db(), [target]))
    name = sheets.filename(target.course.slug, target.slug)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@bp.post("/assignments/<int:assignment_id>/regrade")
@staff_required
def regrade_all(assignment_id: int) -> ResponseReturnValue:
    target = assignment_or_404(assignment_id)
    scope = request.form.get("scope", "all")
    if scope not in SCOPES or request.form.get("confirm") != "yes":
        flash("Tick the confirmation box (and choose which submissions) to regrade.", "error")
        return redirect(url_for("staff.dashboard", assignment_id=target.id))
    report = requeue_all(get_db(), target.id, scope, by=current_user().id)
    for submission_id in report.requeued:  # after the commits, like a single regrade
        services().enqueue(submission_id)
    flash(report.sentence(), "info")
    return redirect(url_for("staff.dashboard", assignment_id=target.id))


@bp.post("/assignments/<int:assignment_id>/extensions")
@staff_required
def grant_extension(assignment_id: int) -> ResponseReturnValue:
    target = assignment_or_404(assignment_id)
    form = extensions.ExtensionForm(**{k: request.form.get(k, "") for k in EXTENSION_FIELDS})
    try:
        granted = extensions.grant(get_db(), target, form, current_user(), now())
    except extensions.ExtensionError as problem:
        return render_dashboard(target, extension_error=str(problem), form=form), 400
    flash(f"{granted.user.email} now has until {utc(granted.due_at)}.", "info")
    return redirect(url_for("staff.dashboard", assignment_id=target.id) + "#extensions")


@bp.post("/assignments/<int:assignment_id>/extensions/<int:user_id>/revoke")
@staff_required
def revoke_extension(assignment_id: int, user_id: int) -> ResponseReturnValue:
    target = assignment_or_404(assignment_id)
    if extensions.revoke(get_db(), target, user_id):
        flash("The extension is revoked; the assignment's own dates apply again.", "info")
    else:
        flash("That student has no extension on this assignment.", "error")
    return redirect(url_for("staff.dashboard", assignment_id=target.id) + "#extensions")


@bp.get("/assignments/<int:assignment_id>/students/<int:user_id>")
@staff_required
def student(assignment_id: int, user_id: int) -> ResponseReturnValue:
    target = assignment_or_404(assignment_id)
    found = get_db().get(User, user_id)
    rows = queries.user_submissions(get_db(), user_id, target.id)
    if found is None or not (rows or lookups.enrolled(get_db(), found, target.course_id)):
        abort(404)  # only the course's people: staff must not look up any account by id
    return render_template(
        "staff/student.html", a=target, student=found, now=now(), rows=rows,
        extension=extensions.find(get_db(), target.id, found.id),
        dates=extensions.deadlines_for(get_db(), target, found))


def render_dashboard(target: Assignment, *, extension_error: str | None = None,
                     form: extensions.ExtensionForm | None = None) -> str:
    db, moment = get_db(), now()
    query = gradebook.TableQuery.from_args(request.args.to_dict())
    rows = queries.gradebook(db, target.id)
    span = figures.window(target, moment)
    rates = figures.pass_rates(db, rows)
    before = request.args.get("before", type=int)
    recent = lookups.submissions_page(db, assignment_id=target.id, before_id=before,
                                      limit=RECENT)
    return render_template(
        "staff/dashboard.html", a=target, now=moment, query=query,
        table=gradebook.table(rows, extensions.by_user(db, target.id), query),
        students=len(rows), recent=recent, older=recent[-1].id if len(recent) == RECENT else None,
        newest=before is None,
        counts=lookups.status_counts(db, target),
        live=figures.live(db, target, moment, services().alive_window()),
        histogram=Markup(figures.score_histogram(rows, max_points(target, rows))),
        rates=Markup(figures.pass_rate_chart(rates)) if rates else None,
        per_hour=Markup(figures.per_hour_chart(figures.hourly_counts(db, target.id, span), span,
                                               target.course.timezone)),
        extension_list=extensions.listed(db, target.id), extension_error=extension_error,
        form=form or extensions.ExtensionForm(email="", due_at=""),
    )


def student_rows(target: Assignment, query: gradebook.TableQuery) -> list[gradebook.StudentRow]:
    rows = queries.gradebook(get_db(), target.id)
    return gradebook.table(rows, extensions.by_user(get_db(), target.id), query)


def max_points(target: Assignment, rows: Sequence[queries.GradebookRow] = ()) -> float:
    """The assignment's total points (its spec), else the largest stored maximum."""
    try:
        return lookups.spec_for(target).max_score
    except SpecError:
        return max((r.max_score or 0.0 for r in rows), default=0.0) or 100.0


@bp.get("/submissions/<int:submission_id>")
@staff_required
def submission(submission_id: int) -> ResponseReturnValue:
    return render_submission(submission_or_404(submission_id))


def render_submission(found: Submission, error: str | None = None,
                      code: int = 200) -> ResponseReturnValue:
    page = render_template("staff/submission.html", s=found, now=now(), error=error,
                           view=shown(found, now(), staff=True),
                           earlier=[(h, *earlier_score(h, found, now(), staff=True))
                                    for h in adjustments.history(get_db(), found.id)])
    return page, code


@bp.post("/submissions/<int:submission_id>/adjustments")
@staff_required
def adjust(submission_id: int) -> ResponseReturnValue:
    """A manual adjustment: points (negative to take) and a comment the student reads.
    Kept through regrades (store.adjustments)."""
    found = submission_or_404(submission_id)
    try:
        points = float(request.form.get("points", "").strip() or "nan")
        adjustments.add_adjustment(get_db(), found, current_user(), points,
                                   request.form.get("comment", ""))
    except ValueError as problem:  # AdjustmentError is a ValueError
        get_db().rollback()
        message = str(problem) if isinstance(problem, adjustments.AdjustmentError) else \
            "Points must be a number such as 2 or -1.5."
        return render_submission(found, message, 400)
    get_db().commit()
    flash(f"Adjusted submission {found.id} by {points:+g} points.", "info")
    return redirect(url_for("staff.submission", submission_id=found.id) + "#adjustments")


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
        requeue(get_db(), found, by=current_user().id)
    except CannotRegrade as busy:
        flash(str(busy), "error")
    else:
        services().enqueue(found.id)
        flash(f"Submission {found.id} is back in the queue.", "info")
    return redirect(url_for("staff.submission", submission_id=found.id))


def assignment_or_404(assignment_id: int) -> Assignment:
    """The assignment if the user is staff of its course (by that enrollment's role)."""
    found = lookups.staff_assignment_for(get_db(), current_user(), assignment_id)
    if found is None:
        abort(404)
    use_timezone(found.course.timezone)
    return found


def submission_or_404(submission_id: int) -> Submission:
    found = lookups.staff_submission_for(get_db(), current_user(), submission_id)
    if found is None:
        abort(404)
    use_timezone(found.assignment.course.timezone)
    return found


@bp.route("/submissions/<int:submission_id>/code", methods=("GET", "POST"))
@staff_required
def code(submission_id: int) -> ResponseReturnValue:
    """The submission's files, highlighted, with line comments staff add here."""
    found = submission_or_404(submission_id)
    files = code_view.read_files(services().archives.path(found.archive_sha256),
                                 lookups.spec_for(found.assignment).submission.top_level)
    error = None
    if request.method == "POST":
        try:
            line = int(request.form.get("line", "0") or 0)
            code_view.add_comment(get_db(), found, files, current_user(),
                                  request.form.get("path", ""), line,
                                  request.form.get("body", ""))
        except ValueError as problem:
            get_db().rollback()
            error = str(problem) if isinstance(problem, code_view.CommentError) else \
                "The line must be a number."
        else:
            get_db().commit()
            flash("Comment added; the student sees it in their code view.", "info")
            anchor = f"#L-{request.form.get('path', '')}-{line}"
            return redirect(url_for("staff.code", submission_id=found.id) + anchor)
    page = render_template("code.html", s=found, files=files, staff=True, error=error,
                           comments=code_view.comments_by_line(found),
                           chosen_path=request.args.get("path", ""),
                           chosen_line=request.args.get("line", ""))
    return page, 400 if error else 200


@bp.get("/assignments/<int:assignment_id>/similarity")
@staff_required
def similarity_report(assignment_id: int) -> ResponseReturnValue:
    """Pairs of counted submissions that are suspiciously alike (web.similarity)."""
    target = assignment_or_404(assignment_id)
    try:
        threshold = min(max(float(request.args.get("threshold", "0.5")), 0.05), 1.0)
    except ValueError:
        threshold = 0.5
    spec = lookups.spec_for(target)
    counted = [r for r in queries.gradebook(get_db(), target.id) if r.best_id is not None]
    rows = {s.id: s for s in get_db().scalars(
        select(Submission).where(Submission.id.in_([r.best_id for r in counted])))}
    handins = [similarity.Handin(r.email, r.best_id, similarity.python_of(
        services().archives.path(rows[r.best_id].archive_sha256), spec.submission.top_level))
        for r in counted if r.best_id in rows]
    pairs = similarity.report(spec, handins, threshold)
    return render_template("staff/similarity.html", a=target, pairs=pairs,
                           threshold=threshold, compared=len(handins))


@bp.get("/assignments/<int:assignment_id>/submissions.zip")
@staff_required
def download_all(assignment_id: int) -> ResponseReturnValue:
    """Each student's latest or best (the counted) submission, as uploaded, in one zip
    with a manifest.csv."""
    target = assignment_or_404(assignment_id)
    which = request.args.get("which", "best")
    if which not in ("best", "latest"):
        abort(400, description="Choose which=best or which=latest.")
    body = bundle.submissions_zip(get_db(), services().archives, target, which)
    name = sheets.filename(target.course.slug, target.slug, which).replace(
        "-gradebook.csv", "-submissions.zip")
    return send_file(body, mimetype="application/zip", as_attachment=True, download_name=name)


# The staff pages kept in modules of their own.
courses.add_routes(bp)
staff_assignments.add_routes(bp)
