"""Staff pages to create an assignment from an uploaded folder archive and to edit an
assignment's settings (title, release, due and late dates, late penalty, daily limit,
hidden-test visibility, a new version of its folder).

Its routes go on the ``staff`` blueprint (:func:`add_routes`, called by :mod:`web.staff`);
the work is done by
``store.assignment_folders`` and ``store.assignment_settings``, as for
``dlgrade assignments add``. Staff act only on the courses they teach (admins on all).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from grader.spec import builtin_assignments, resolve_assignment
from grader.verify import verify_assignment
from store.assignment_folders import (
    MAX_FOLDER_BYTES,
    FolderError,
    FolderLimits,
    StoredFolder,
    add_folder,
    unpack,
    validate,
)
from store.assignment_settings import Changes, SettingsError, apply, parse_when, save_assignment
from store.models import Assignment, Course, User
from store.sessions import find_session
from tasks.broker import grading_budget
from tasks.sandboxes import SandboxProvider
from web import lookups
from web.access import staff_anywhere
from web.auth import SESSION_KEY, current_user, staff_required
from web.services import get_db, services

SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
FORM_OVERHEAD_BYTES = 1 << 20


def add_routes(bp: Blueprint) -> None:
    """The assignment folder pages, on :data:`web.staff.bp` (endpoints ``staff.<view>``)."""
    bp.add_url_rule("/assignments/new", view_func=new_assignment, methods=("GET", "POST"))
    bp.add_url_rule("/assignments/<int:assignment_id>/settings", view_func=assignment_settings,
                    methods=("GET", "POST"))


class FormError(Exception):
    """A form that cannot be saved; the message is shown above it."""


def taught_courses(user: User) -> Sequence[Course]:
    return lookups.staff_courses(get_db(), user)


@staff_required
def new_assignment() -> ResponseReturnValue:
    courses = taught_courses(current_user())
    if request.method == "GET":
        return render_template("staff/assignment_form.html", a=None, courses=courses,
                               builtins=builtin_assignments(),
                               form={"hidden_visible_after_due": "on",
                                     "course": request.args.get("course", "")})
    try:
        course = _chosen(courses, request.form.get("course", ""))
        changes = changes_from(request.form)
        builtin = request.form.get("builtin", "")
        if builtin:
            row = _add_builtin(course, builtin, changes)
            points = resolve_assignment(builtin).max_score
        else:
            stored = _stored(request.files.get("file"), course,
                             verify=request.form.get("verify") == "on")
            _refuse_existing(course, stored.spec.slug)
            row, _ = save_assignment(get_db(), course, stored, changes)
            points = stored.spec.max_score
        get_db().commit()
    except (FormError, FolderError, SettingsError) as exc:
        get_db().rollback()
        return render_template("staff/assignment_form.html", a=None, courses=courses,
                               builtins=builtin_assignments(), form=request.form,
                               error=str(exc)), 400
    verified = " It passed verification." if request.form.get("verify") == "on" else ""
    flash(f"Created {row.slug} in {course.slug} ({points:g} points).{verified}", "info")
    return redirect(url_for("staff.assignment_settings", assignment_id=row.id))


def _add_builtin(course: Course, slug: str, changes: Changes) -> Assignment:
    """The course's use of a built-in assignment (the demo course has them all)."""
    if slug not in builtin_assignments():
        raise FormError(f"There is no built-in assignment {slug!r}.")
    _refuse_existing(course, slug)
    spec = resolve_assignment(slug)
    row = Assignment(course_id=course.id, slug=slug, title=spec.title, folder=None,
                     queue="gpu" if spec.sandbox.gpu else "cpu", late_penalty_per_day=0.0,
                     hidden_visible_after_due=True)
    row.release_at = row.due_at = row.late_due_at = row.daily_limit = None
    apply(row, changes)
    get_db().add(row)
    get_db().flush()
    return row


@staff_required
def assignment_settings(assignment_id: int) -> ResponseReturnValue:
    target = _taught_assignment(assignment_id)
    if request.method == "GET":
        return render_template("staff/assignment_form.html", a=target, courses=[],
                               form=form_values(target))
    try:
        changes = changes_from(request.form)
        upload = request.files.get("file")
        if upload is not None and upload.filename:
            if target.folder is None:
                raise FormError(f"{target.slug} is a built-in assignment; its folder cannot "
                                "be replaced (create a new assignment instead).")
            stored = _stored(upload, target.course, expected_slug=target.slug)
            save_assignment(get_db(), target.course, stored, changes)
        else:
            apply(target, changes)
        target.students_choose = request.form.get("students_choose") == "on"
        get_db().commit()
    except (FormError, FolderError, SettingsError) as exc:
        get_db().rollback()
        return render_template("staff/assignment_form.html", a=target, courses=[],
                               form=request.form, error=str(exc)), 400
    flash(f"Saved the settings of {target.slug}.", "info")
    return redirect(url_for("staff.assignment_settings", assignment_id=target.id))


FOLDER_UPLOAD_ENDPOINTS = ("staff.new_assignment", "staff.assignment_settings")


def init_app(app: Flask) -> None:
    """Registered before the CSRF check, which is the first to read the form body."""
    app.before_request(_allow_folder_sized_uploads)


def _allow_folder_sized_uploads() -> None:
    """Assignment folders (data included) may exceed the handin upload limit: only on
    the two folder forms and only for a logged-in staff member, so nobody else can make
    the service parse a body that large."""
    if request.endpoint not in FOLDER_UPLOAD_ENDPOINTS:
        return
    found = find_session(get_db(), session.get(SESSION_KEY))
    user = found.user if found is not None else None
    if user is not None and staff_anywhere(get_db(), user):
        request.max_content_length = MAX_FOLDER_BYTES + FORM_OVERHEAD_BYTES


def changes_from(form: Mapping[str, str]) -> Changes:
    """The form's fields as Changes; empty dates and limits mean none."""
    try:
        penalty = float(form.get("late_penalty", "") or 0)
    except ValueError:
        raise FormError("The late penalty must be a number such as 0.1.") from None
    limit_text = form.get("daily_limit", "").strip()
    if limit_text and not limit_text.lstrip("-").isdigit():
        raise FormError("The daily limit must be a whole number (or empty for no limit).")
    changes = Changes(
        release_at=parse_when(form.get("release_at"), "Release"),
        due_at=parse_when(form.get("due_at"), "Due"),
        late_due_at=parse_when(form.get("late_due_at"), "Late due"),
        late_penalty_per_day=penalty,
        daily_limit=int(limit_text) if limit_text else None,
        hidden_visible_after_due=form.get("hidden_visible_after_due") == "on",
    )
    if form.get("title", "").strip():
        changes.title = form["title"].strip()
    return changes


def form_values(target: Assignment) -> dict[str, str]:
    def moment(value: object) -> str:
        return value.strftime("%Y-%m-%dT%H:%M") if hasattr(value, "strftime") else ""

    return {
        "title": target.title, "release_at": moment(target.release_at),
        "due_at": moment(target.due_at), "late_due_at": moment(target.late_due_at),
        "late_penalty": f"{target.late_penalty_per_day:g}",
        "daily_limit": "" if target.daily_limit is None else str(target.daily_limit),
        "hidden_visible_after_due": "on" if target.hidden_visible_after_due else "",
        "students_choose": "on" if target.students_choose else "",
    }


def _chosen(courses: Sequence[Course], slug: str) -> Course:
    for course in courses:
        if course.slug == slug:
            return course
    raise FormError("Choose one of the courses you teach.")


def _stored(upload: FileStorage | None, course: Course, *,
            expected_slug: str | None = None, verify: bool = False) -> StoredFolder:
    if upload is None or not upload.filename:
        raise FormError("Choose the assignment's archive (.tar, .tar.gz or .zip) to upload, "
                        "or one of the built-in assignments.")
    name = Path(upload.filename).name
    if not name.lower().endswith(SUFFIXES):
        raise FormError(f"{name} is not a .tar, .tar.gz or .zip archive.")
    with tempfile.TemporaryDirectory(prefix="dlgrade-assignment-upload-") as scratch:
        archive = Path(scratch) / name
        upload.save(archive)
        if verify:
            _verify(archive, Path(scratch) / "unpacked")
        return add_folder(archive, services().settings.data_dir, course.slug,
                          expected_slug=expected_slug,
                          limits=FolderLimits(grading_s=grading_budget(services().settings)))


def _verify(archive: Path, scratch: Path) -> None:
    """As ``dlgrade assignments add --verify``: the solution must score full marks and
    every known bug must fail its tests, graded in this service's CPU sandbox."""
    scratch.mkdir()
    spec = validate(unpack(archive, scratch))
    sandboxes = SandboxProvider.from_settings(services().settings)
    try:
        problems = verify_assignment(spec, sandboxes.cpu)
    finally:
        sandboxes.close()
    if problems:
        raise FormError("Verification refused the assignment:\n" + "\n".join(problems))


def _refuse_existing(course: Course, slug: str) -> None:
    taken = get_db().scalars(select(Assignment.id).where(
        Assignment.course_id == course.id, Assignment.slug == slug)).first()
    if taken is not None:
        raise FormError(f"{course.slug} already has an assignment {slug!r}; upload the new "
                        "version from its settings page.")


def _taught_assignment(assignment_id: int) -> Assignment:
    found = get_db().get(Assignment, assignment_id)
    if found is None or found.course_id not in {c.id for c in taught_courses(current_user())}:
        abort(404)
    return found
