"""Read queries of the web layer, scoped by who asks (the unscoped named queries are in
``store.queries``).

A user reaches the courses they are enrolled in (an admin reaches every course). What
they see there follows their role *in that course* (:mod:`web.access`): students see
only released assignments and only their own submissions; the course's staff see every
assignment and submission of it. Anything out of scope is simply not found, so views
answer 404 without revealing that it exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from grader.spec import AssignmentSpec
from grader.spec import spec_for as grader_spec_for
from store.models import Assignment, Course, Enrollment, Submission, User
from web.access import member_course_ids, staff_course_ids


class AmbiguousSlug(Exception):
    """The slug names assignments in several of the user's courses."""


def spec_for(assignment: Assignment) -> AssignmentSpec:
    """The assignment's spec (grader.spec.spec_for: cached, shared with the worker)."""
    return grader_spec_for(assignment.slug, assignment.folder)


def _assignment_scope(user: User, now: datetime) -> Select[Assignment]:
    """The assignments of the user's courses: all of them where the user is staff,
    the released ones elsewhere."""
    released = or_(Assignment.release_at.is_(None), Assignment.release_at <= now)
    return select(Assignment).where(
        Assignment.course_id.in_(member_course_ids(user)),
        or_(released, Assignment.course_id.in_(staff_course_ids(user))))


def staff_assignment_for(db: Session, user: User, assignment_id: int) -> Assignment | None:
    """The assignment if ``user`` is staff of its course; else None."""
    query = select(Assignment).where(Assignment.id == assignment_id,
                                     Assignment.course_id.in_(staff_course_ids(user)))
    return db.scalars(query.options(joinedload(Assignment.course))).first()


def assignments_for(db: Session, user: User, now: datetime) -> Sequence[Assignment]:
    query = _assignment_scope(user, now).options(joinedload(Assignment.course))
    ordered = query.order_by(Assignment.due_at.is_(None), Assignment.due_at, Assignment.id)
    return db.scalars(ordered).all()


def assignment_for(db: Session, user: User, assignment_id: int, now: datetime) -> Assignment | None:
    query = _assignment_scope(user, now).where(Assignment.id == assignment_id)
    return db.scalars(query).first()


def assignment_by_slug(
    db: Session, user: User, slug: str, course: str | None, now: datetime
) -> Assignment | None:
    """The assignment called ``slug`` in the user's courses (or in ``course``)."""
    query = _assignment_scope(user, now).where(Assignment.slug == slug).join(Assignment.course)
    if course:
        query = query.where(Course.slug == course)
    found = db.scalars(query.options(joinedload(Assignment.course))).all()
    if len(found) > 1:
        courses = ", ".join(sorted(a.course.slug for a in found))
        raise AmbiguousSlug(
            f"{slug!r} is an assignment in several of your courses ({courses}); "
            "add ?course=SLUG to say which."
        )
    return found[0] if found else None


def submission_for(db: Session, user: User, submission_id: int) -> Submission | None:
    """The submission if ``user`` owns it or is staff in its course; else None."""
    query = (
        select(Submission).join(Submission.assignment)
        .where(Submission.id == submission_id,
               or_(Submission.user_id == user.id,
                   Assignment.course_id.in_(staff_course_ids(user))))
        .options(joinedload(Submission.assignment), selectinload(Submission.tests))
    )
    return db.scalars(query).first()


def staff_submission_for(db: Session, user: User, submission_id: int) -> Submission | None:
    """The submission if ``user`` is staff in its course (owning it is not enough)."""
    query = (
        select(Submission).join(Submission.assignment)
        .where(Submission.id == submission_id,
               Assignment.course_id.in_(staff_course_ids(user)))
        .options(joinedload(Submission.assignment), selectinload(Submission.tests))
    )
    return db.scalars(query).first()


def staff_course(db: Session, user: User, slug: str) -> Course | None:
    """The course ``slug`` if ``user`` is staff there (an admin: any course); else None."""
    query = select(Course).where(Course.slug == slug, Course.id.in_(staff_course_ids(user)))
    return db.scalars(query).first()


def staff_courses(db: Session, user: User) -> Sequence[Course]:
    """The courses ``user`` teaches (an admin: every course), by slug."""
    query = select(Course).where(Course.id.in_(staff_course_ids(user))).order_by(Course.slug)
    return db.scalars(query).all()


def submissions_page(
    db: Session, *, user_id: int | None = None, assignment_id: int | None = None,
    before_id: int | None = None, limit: int = 50,
) -> Sequence[Submission]:
    """Up to ``limit`` submissions (of one user and/or one assignment), newest id first,
    with ids below ``before_id`` (the cursor): a stable order however many arrive."""
    query = select(Submission)
    if user_id is not None:
        query = query.where(Submission.user_id == user_id)
    if assignment_id is not None:
        query = query.where(Submission.assignment_id == assignment_id)
    if before_id is not None:
        query = query.where(Submission.id < before_id)
    options = (joinedload(Submission.assignment).joinedload(Assignment.course),
               joinedload(Submission.user), selectinload(Submission.tests))
    return db.scalars(query.options(*options).order_by(Submission.id.desc()).limit(limit)).all()


def submissions_by_assignment(
    db: Session, user: User, assignment_ids: Sequence[int]
) -> dict[int, list[Submission]]:
    """The user's finished submissions, grouped by assignment (for best scores)."""
    query = (
        select(Submission)
        .where(
            Submission.user_id == user.id,
            Submission.assignment_id.in_(assignment_ids),
            Submission.status == "done",
        )
        .options(selectinload(Submission.tests))
    )
    grouped: dict[int, list[Submission]] = {}
    for submission in db.scalars(query):
        grouped.setdefault(submission.assignment_id, []).append(submission)
    return grouped


def staff_assignments(db: Session, user: User) -> Sequence[Assignment]:
    query = (
        select(Assignment)
        .where(Assignment.course_id.in_(staff_course_ids(user)))
        .options(joinedload(Assignment.course))
        .order_by(Assignment.course_id, Assignment.due_at.is_(None), Assignment.due_at)
    )
    return db.scalars(query).all()


def status_counts(db: Session, assignment: Assignment) -> dict[str, int]:
    query = (
        select(Submission.status, func.count(Submission.id))
        .where(Submission.assignment_id == assignment.id)
        .group_by(Submission.status)
    )
    return {status: int(count) for status, count in db.execute(query).all()}


def enrolled(db: Session, user: User, course_id: int) -> bool:
    query = select(Enrollment.id).where(Enrollment.user_id == user.id,
                                        Enrollment.course_id == course_id)
    return db.scalar(query) is not None
