"""Who calls the API and what they may reach, for the student and the staff views
(:mod:`web.api`, :mod:`web.api_staff`): the token's user, the scopes a view asks for,
the lookups that answer 404 (or 403) for what the caller may not see."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from flask import abort, g, request

from store.models import ApiToken, Assignment, Submission, User
from web import lookups, scopes
from web.access import account_role, is_course_staff, staff_anywhere
from web.pagination import BadPage, Page, parse_page
from web.services import get_db

STAFF_ONLY = "This is for course staff; your token belongs to a student."
ID = "int(max=2147483647)"  # ids are 32-bit: a larger one is simply not found


def now() -> datetime:
    return datetime.now(UTC)


def api_user() -> User:
    return cast(User, g.api_user)


def need(scope: str) -> None:
    """403 unless the request's token holds ``scope``."""
    token = cast(ApiToken, g.api_token)
    if scope not in scopes.effective(token.scopes, account_role(get_db(), token.user)):
        abort(403, description=scopes.missing(scope))


def need_staff(scope: str) -> None:
    """The scope, and staff of some course; which course is checked by the lookup."""
    need(scope)
    if not staff_anywhere(get_db(), api_user()):
        abort(403, description=STAFF_ONLY)


def course_staff(course_id: int) -> bool:
    """Whether the token's owner is staff of this course (by its enrollment's role)."""
    return is_course_staff(get_db(), api_user(), course_id)


def page() -> Page:
    try:
        return parse_page(request.args)
    except BadPage as bad:
        abort(400, description=str(bad))


def assignment_or_404(slug: str) -> Assignment:
    course = request.args.get("course") or None
    try:
        found = lookups.assignment_by_slug(get_db(), api_user(), slug, course, now())
    except lookups.AmbiguousSlug as ambiguous:
        abort(400, description=str(ambiguous))
    if found is None:
        where = f"course {course[:64]!r}" if course else "your courses"
        abort(404, description=f"There is no assignment {slug[:64]!r} in {where}.")
    return found


def submission_or_404(submission_id: int) -> Submission:
    found = lookups.submission_for(get_db(), api_user(), submission_id)
    if found is None:
        abort(404, description=f"There is no submission {submission_id} that you can see.")
    return found


def staff_assignment_or_404(slug: str) -> Assignment:
    """The assignment, only if the token's owner is staff of its course."""
    found = assignment_or_404(slug)
    if not course_staff(found.course_id):
        abort(404, description=f"You are not staff of the course of {slug[:64]!r}.")
    return found


def staff_submission_or_404(submission_id: int) -> Submission:
    found = lookups.staff_submission_for(get_db(), api_user(), submission_id)
    if found is None:
        abort(404, description=f"There is no submission {submission_id} in a course you "
                               "teach.")
    return found


def stamp(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
