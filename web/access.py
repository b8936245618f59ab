"""Who may do what in which course.

Rights come from the enrollment's own role, per course: a user can be a student in one
course and a TA in another. Only ``admin`` is a global right (every course). The
account's global role ``staff`` means "may create courses" (and gives staff API
scopes); it grants nothing inside a course the user is not staff of.
"""

from __future__ import annotations

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from store.models import Course, Enrollment, User

STAFF_ROLES = ("staff", "admin")
COURSE_ROLES = ("student", "staff")


def is_admin(user: User) -> bool:
    return user.role == "admin"


def may_create_courses(user: User) -> bool:
    return user.role in STAFF_ROLES


def member_course_ids(user: User) -> Select[int]:
    """The courses ``user`` belongs to in any role (an admin: every course)."""
    if is_admin(user):
        return select(Course.id)
    return select(Enrollment.course_id).where(Enrollment.user_id == user.id)


def staff_course_ids(user: User) -> Select[int]:
    """The courses where ``user``'s own enrollment is a staff role (an admin: all)."""
    if is_admin(user):
        return select(Course.id)
    return select(Enrollment.course_id).where(Enrollment.user_id == user.id,
                                              Enrollment.role.in_(STAFF_ROLES))


def course_role(db: Session, user: User, course_id: int) -> str | None:
    """``admin``, the enrollment's role, or None when ``user`` is not in the course."""
    if is_admin(user):
        return "admin"
    return db.scalar(select(Enrollment.role).where(Enrollment.user_id == user.id,
                                                   Enrollment.course_id == course_id))


def is_course_staff(db: Session, user: User, course_id: int) -> bool:
    return course_role(db, user, course_id) in STAFF_ROLES


def staff_anywhere(db: Session, user: User) -> bool:
    """Whether the staff pages are for ``user``: staff of some course, or allowed to
    create one."""
    if may_create_courses(user):
        return True
    return bool(db.scalar(select(exists().where(Enrollment.user_id == user.id,
                                                Enrollment.role.in_(STAFF_ROLES)))))


def account_role(db: Session, user: User) -> str:
    """The role whose API scopes a token gets by default: staff for anyone who is staff
    somewhere, else student."""
    if user.role in STAFF_ROLES:
        return user.role
    return "staff" if staff_anywhere(db, user) else "student"
