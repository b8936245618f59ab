"""Course staff pages for a course itself: create one, its settings (title, time zone),
its people (roles, removal, password-reset links, one person added by hand) and a CSV
roster import. The work is done by :mod:`store.courses` (as for ``dlgrade courses
add`` and ``dlgrade roster import``) and :mod:`store.resets`."""

from __future__ import annotations

import logging
import smtplib
from zoneinfo import available_timezones

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from store import courses as store
from store.models import Course, Enrollment, User
from store.resets import issue_reset
from store.users import normalise_email
from web import lookups, mail, sheets
from web.access import is_admin, may_create_courses
from web.auth import current_user, staff_required
from web.formatting import use_timezone
from web.passwords import mail_settings, reset_url
from web.services import get_db

log = logging.getLogger(__name__)
MAX_ROSTER_BYTES = 2 << 20


def add_routes(bp: Blueprint) -> None:
    """The course pages, on :data:`web.staff.bp` (endpoints ``staff.<view>``)."""
    bp.add_url_rule("/courses/new", view_func=new_course, methods=("GET", "POST"))
    bp.add_url_rule("/courses/<slug>/settings", view_func=course_settings, methods=("GET", "POST"))
    bp.add_url_rule("/courses/<slug>/people", view_func=people, methods=("GET",))
    bp.add_url_rule("/courses/<slug>/people", view_func=add_person, methods=("POST",))
    bp.add_url_rule("/courses/<slug>/roster", view_func=import_roster, methods=("POST",))
    bp.add_url_rule("/courses/<slug>/people/<int:user_id>/role", view_func=change_role,
                    methods=("POST",))
    bp.add_url_rule("/courses/<slug>/people/<int:user_id>/remove", view_func=remove_person,
                    methods=("POST",))
    bp.add_url_rule("/courses/<slug>/people/<int:user_id>/reset", view_func=reset_link,
                    methods=("POST",))
    bp.add_url_rule("/courses/<slug>/gradebook", view_func=course_gradebook, methods=("GET",))
    bp.add_url_rule("/courses/<slug>/gradebook.csv", view_func=course_gradebook_csv,
                    methods=("GET",))


def timezones() -> list[str]:
    return sorted(available_timezones())


def course_or_404(slug: str) -> Course:
    found = lookups.staff_course(get_db(), current_user(), slug)
    if found is None:
        abort(404)
    use_timezone(found.timezone)
    return found


@staff_required
def new_course() -> ResponseReturnValue:
    if not may_create_courses(current_user()):
        abort(403, description="Only instructors (account role staff) can create courses.")
    form = request.form if request.method == "POST" else {"timezone": "UTC"}
    if request.method == "GET":
        return render_template("staff/course_form.html", c=None, form=form, zones=timezones())
    try:
        course = store.create_course(get_db(), form.get("slug", ""), form.get("title", ""),
                                     form.get("timezone", "UTC") or "UTC", owner=current_user())
        get_db().commit()
    except store.CourseError as problem:
        get_db().rollback()
        return render_template("staff/course_form.html", c=None, form=form, zones=timezones(),
                               error=str(problem)), 400
    flash(f"Created {course.slug}. Add its people, then its assignments.", "info")
    return redirect(url_for("staff.people", slug=course.slug))


@staff_required
def course_settings(slug: str) -> ResponseReturnValue:
    course = course_or_404(slug)
    if request.method == "GET":
        form = {"title": course.title, "timezone": course.timezone}
        return render_template("staff/course_form.html", c=course, form=form, zones=timezones())
    try:
        store.update_course(course, request.form.get("title", ""),
                            request.form.get("timezone", "UTC"))
        get_db().commit()
    except store.CourseError as problem:
        get_db().rollback()
        return render_template("staff/course_form.html", c=course, form=request.form,
                               zones=timezones(), error=str(problem)), 400
    flash(f"Saved the settings of {course.slug}.", "info")
    return redirect(url_for("staff.course_settings", slug=course.slug))


@staff_required
def people(slug: str) -> ResponseReturnValue:
    return render_people(course_or_404(slug))


def render_people(course: Course, *, report: store.RosterReport | None = None,
                  links: list[tuple[str, str]] | None = None, error: str | None = None,
                  code: int = 200) -> ResponseReturnValue:
    q = request.args.get("q", "").strip().lower()[:200]
    rows = [e for e in store.members(get_db(), course)
            if not q or q in e.user.email or q in (e.user.name or "").lower()]
    page = render_template("staff/people.html", c=course, rows=rows, q=q, report=report,
                           links=links or [], error=error, mail=mail_settings().enabled)
    return page, code


@staff_required
def add_person(slug: str) -> ResponseReturnValue:
    course = course_or_404(slug)
    line = store.RosterLine(normalise_email(request.form.get("email", "")),
                            request.form.get("name", "").strip()[:200],
                            request.form.get("role", "student"))
    if "@" not in line.email or line.role not in store.COURSE_ROLES:
        return render_people(course, error="Give an e-mail address and a role (student or "
                                           "staff).", code=400)
    report = store.import_roster(get_db(), course, [line])
    links = invitations(report.created)
    get_db().commit()
    return render_people(course, report=report, links=links)


@staff_required
def import_roster(slug: str) -> ResponseReturnValue:
    course = course_or_404(slug)
    upload = request.files.get("roster")
    if upload is None or not upload.filename:
        return render_people(course, error="Choose a CSV file to import.", code=400)
    content = upload.stream.read(MAX_ROSTER_BYTES + 1)
    try:
        if len(content) > MAX_ROSTER_BYTES:
            raise store.CourseError("The roster file is larger than 2 MB.")
        lines, problems = store.parse_roster(content.decode("utf-8-sig", errors="replace"))
    except store.CourseError as problem:
        return render_people(course, error=str(problem), code=400)
    report = store.import_roster(get_db(), course, lines)
    report.problems[:0] = problems
    links = invitations(report.created)
    get_db().commit()
    flash(f"Roster imported: {report.sentence()}", "info")
    return render_people(course, report=report, links=links)


def invitations(created: list[User]) -> list[tuple[str, str]]:
    """Reset links for new accounts: e-mailed when SMTP is set up, and returned (shown
    once to the staff member) in any case, to hand out another way if need be."""
    settings = mail_settings()
    links = [(user.email, reset_url(issue_reset(get_db(), user, current_user())))
             for user in created]
    if settings.enabled:
        for email, link in links:
            try:
                mail.send(settings, email, "Your dlgrade account",
                          f"You have been added to a course on dlgrade. Choose your password "
                          f"here (the link works once, for 24 hours):\n\n{link}")
            except (OSError, smtplib.SMTPException):
                log.exception("could not send the invitation to %s", email)
    return links


def member_or_404(course: Course, user_id: int) -> Enrollment:
    found = next((e for e in store.members(get_db(), course) if e.user_id == user_id), None)
    if found is None:
        abort(404)
    return found


@staff_required
def change_role(slug: str, user_id: int) -> ResponseReturnValue:
    course = course_or_404(slug)
    member = member_or_404(course, user_id)
    role = request.form.get("role", "")
    if user_id == current_user().id and role != "staff" and not is_admin(current_user()):
        flash("You cannot take away your own staff role.", "error")
    elif role in store.COURSE_ROLES:
        store.enroll(get_db(), member.user, course, role)
        get_db().commit()
        flash(f"{member.user.email} is now {role} in {course.slug}.", "info")
    return redirect(url_for("staff.people", slug=course.slug))


@staff_required
def remove_person(slug: str, user_id: int) -> ResponseReturnValue:
    course = course_or_404(slug)
    member = member_or_404(course, user_id)
    if user_id == current_user().id:
        flash("You cannot remove yourself from the course.", "error")
    else:
        store.unenroll(get_db(), course, user_id)
        get_db().commit()
        flash(f"Removed {member.user.email} from {course.slug} (their submissions are kept).",
              "info")
    return redirect(url_for("staff.people", slug=course.slug))


@staff_required
def reset_link(slug: str, user_id: int) -> ResponseReturnValue:
    """A password link for a member. Staff and admin accounts only get one from an admin
    (a TA must not be able to take over an instructor's account)."""
    course = course_or_404(slug)
    member = member_or_404(course, user_id)
    target = member.user
    if (member.role != "student" or target.role != "student") and not is_admin(current_user()):
        abort(403, description="Only an administrator can reset a staff member's password.")
    links = [(target.email, reset_url(issue_reset(get_db(), target, current_user())))]
    get_db().commit()
    return render_people(course, links=links)



@staff_required
def course_gradebook(slug: str) -> ResponseReturnValue:
    course = course_or_404(slug)
    return render_template("staff/course_gradebook.html", c=course,
                           sheet=sheets.course_sheet(get_db(), course))


@staff_required
def course_gradebook_csv(slug: str) -> ResponseReturnValue:
    course = course_or_404(slug)
    body = sheets.sheet_csv(sheets.course_sheet(get_db(), course))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{sheets.filename(course.slug)}"',
        "Cache-Control": "no-store"})
