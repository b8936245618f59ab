"""LTI 1.3 rows: registering platforms, and turning a validated launch into dlgrade's
own terms (an account, a course with a role in it, an assignment).

Nothing here sees an unvalidated token: ``web.lti`` hands over the claims only after
PyLTI1p3 has checked the signature against the platform's key set, ``aud``/``azp``,
``exp``, the nonce and the deployment. Functions add and flush; the caller commits.

Accounts: an LMS user is known by the launch's ``sub`` on that platform. The first
launch links the account with the same e-mail, if any (the platform was registered by a
dlgrade admin, who trusts its e-mails), except an admin account, which an LMS can never
log in to; otherwise a new account without a usable password is made.

Courses: a context already mapped keeps its course. Otherwise the ``dlgrade_course``
custom parameter names an existing course, which is used only when the launching user is
already staff there; else an LMS instructor's first launch creates a course for the
context, with them as its staff. A student's launch never creates or maps anything.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.leases import rowcount
from store.lti_models import LtiContext, LtiPlatform, LtiResourceLink, LtiState, LtiUser
from store.models import Assignment, Course, Enrollment, User, utcnow
from store.users import find_user, normalise_email

LIS = "http://purl.imsglobal.org/vocab/lis/v2/membership"
STAFF_ROLES = (f"{LIS}#Instructor", f"{LIS}#ContentDeveloper", f"{LIS}#Administrator",
               f"{LIS}/Instructor#TeachingAssistant", "Instructor", "TeachingAssistant",
               "ContentDeveloper")
STUDENT_ROLES = (f"{LIS}#Learner", f"{LIS}/Learner#Learner", "Learner")
UNUSABLE_PASSWORD = "!unset"  # no werkzeug hash: the owner sets one by a reset link
SLUG = re.compile(r"[^a-z0-9]+")


class LtiError(ValueError):
    """The launch or registration cannot be used as given; the message says why, in
    words for the person who launched or registered."""


@dataclass(frozen=True)
class PlatformInput:
    issuer: str
    client_id: str
    auth_login_url: str
    auth_token_url: str
    key_set_url: str
    deployment_ids: tuple[str, ...] = ()
    name: str = ""
    auth_audience: str = ""


def check_url(url: str, what: str, allow_http: bool) -> str:
    parts = urlsplit(url.strip())
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise LtiError(f"the {what} must be an https:// URL, not {url!r}.")
    return url.strip()


def register_platform(db: Session, given: PlatformInput, *, allow_http: bool = False
                      ) -> LtiPlatform:
    """Add a platform, or update the one with the same issuer and client id."""
    if not given.issuer.strip() or not given.client_id.strip():
        raise LtiError("a platform needs its issuer and the client id it gave dlgrade.")
    deployments = sorted({d.strip() for d in given.deployment_ids if d.strip()})
    if not deployments:
        raise LtiError("give at least one deployment id (the LMS shows it with the tool).")
    urls = {
        "auth_login_url": check_url(given.auth_login_url, "OIDC authorization URL", allow_http),
        "auth_token_url": check_url(given.auth_token_url, "access token URL", allow_http),
        "key_set_url": check_url(given.key_set_url, "key set (JWKS) URL", allow_http),
    }
    found = find_platform(db, given.issuer.strip(), given.client_id.strip())
    if found is None:
        found = LtiPlatform(issuer=given.issuer.strip(), client_id=given.client_id.strip())
        db.add(found)
    found.name = given.name.strip()[:200] or urlsplit(given.issuer).hostname or given.issuer
    found.deployment_ids = deployments
    found.auth_audience = given.auth_audience.strip()
    found.active = True
    for name, value in urls.items():
        setattr(found, name, value)
    db.flush()
    return found


def find_platform(db: Session, issuer: str, client_id: str | None) -> LtiPlatform | None:
    """The active platform of ``issuer`` and ``client_id``; without a client id (an old
    LMS's login request), the issuer's only one."""
    query = select(LtiPlatform).where(LtiPlatform.issuer == issuer,
                                      LtiPlatform.active.is_(True))
    if client_id:
        return db.scalars(query.where(LtiPlatform.client_id == client_id)).first()
    found = db.scalars(query.limit(2)).all()
    return found[0] if len(found) == 1 else None


def platforms(db: Session) -> Sequence[LtiPlatform]:
    return db.scalars(select(LtiPlatform).order_by(LtiPlatform.id)).all()


def course_role(roles: Iterable[str]) -> str | None:
    """``staff`` or ``student`` for the launch's context roles, else None (observers,
    guests, mentors: no access). Institution and system roles grant nothing in a course."""
    given = set(roles)
    if given & set(STAFF_ROLES):
        return "staff"
    if given & set(STUDENT_ROLES):
        return "student"
    return None


@dataclass(frozen=True)
class Person:
    sub: str
    email: str = ""
    name: str = ""


def ensure_user(db: Session, platform: LtiPlatform, person: Person) -> User:
    """The account of ``person`` on ``platform`` (linked or created, see the module)."""
    if not person.sub:
        raise LtiError("the launch does not say who the user is (no 'sub').")
    known = db.scalars(select(LtiUser).where(LtiUser.platform_id == platform.id,
                                             LtiUser.sub == person.sub)).first()
    if known is not None:
        if person.name and not known.user.name:
            known.user.name = person.name[:200]
        return known.user
    email = normalise_email(person.email) if "@" in person.email else ""
    user = find_user(db, email) if email else None
    if user is not None and user.role == "admin":
        raise LtiError("an administrator's account cannot be used from an LMS; log in to "
                       "dlgrade with its password.")
    if user is None:
        user = User(email=email or placeholder_email(platform, person.sub),
                    name=person.name[:200], role="student", password_hash=UNUSABLE_PASSWORD)
        db.add(user)
        db.flush()
    db.add(LtiUser(platform_id=platform.id, sub=person.sub, user_id=user.id))
    db.flush()
    return user


def placeholder_email(platform: LtiPlatform, sub: str) -> str:
    digest = hashlib.sha256(f"{platform.id}:{sub}".encode()).hexdigest()[:16]
    return f"lti-{platform.id}-{digest}@lti.invalid"


def enroll(db: Session, user: User, course: Course, role: str) -> Enrollment:
    """Enroll ``user`` as ``role``; an LMS never demotes a course's staff to student."""
    found = db.scalars(select(Enrollment).where(Enrollment.user_id == user.id,
                                                Enrollment.course_id == course.id)).first()
    if found is None:
        found = Enrollment(user_id=user.id, course_id=course.id, role=role)
        db.add(found)
    elif role == "staff":
        found.role = "staff"
    db.flush()
    return found


def is_course_staff(db: Session, user: User, course_id: int) -> bool:
    if user.role == "admin":
        return True
    role = db.scalar(select(Enrollment.role).where(Enrollment.user_id == user.id,
                                                   Enrollment.course_id == course_id))
    return role in ("staff", "admin")


@dataclass(frozen=True)
class ContextClaim:
    context_id: str
    title: str = ""
    label: str = ""
    memberships_url: str | None = None
    lineitems_url: str | None = None


def ensure_context(db: Session, platform: LtiPlatform, claim: ContextClaim, user: User,
                   role: str, wanted_course: str = "") -> LtiContext:
    """The context row of ``claim`` with its course (see the module for who may map)."""
    if not claim.context_id:
        raise LtiError("the LMS did not say which course this link is in (no context).")
    row = db.scalars(select(LtiContext).where(LtiContext.platform_id == platform.id,
                                              LtiContext.context_id == claim.context_id)).first()
    if row is None:
        course = _course_for_new_context(db, platform, claim, user, role, wanted_course)
        row = LtiContext(platform_id=platform.id, context_id=claim.context_id,
                         course_id=course.id)
        db.add(row)
    row.title = (claim.title or claim.label or row.title)[:300]
    row.memberships_url = claim.memberships_url or row.memberships_url
    row.lineitems_url = claim.lineitems_url or row.lineitems_url
    db.flush()
    return row


def _course_for_new_context(db: Session, platform: LtiPlatform, claim: ContextClaim,
                            user: User, role: str, wanted: str) -> Course:
    if role != "staff":
        raise LtiError("dlgrade is not set up for this course yet: your instructor needs "
                       "to open this link once first.")
    if wanted:
        course = db.scalars(select(Course).where(Course.slug == wanted.strip())).first()
        if course is None:
            raise LtiError(f"there is no dlgrade course {wanted!r} (the link's "
                           "dlgrade_course parameter).")
        if not is_course_staff(db, user, course.id):
            raise LtiError(f"you are not staff of the dlgrade course {wanted!r}, so this "
                           "LMS course cannot be linked to it.")
        return course
    course = Course(slug=_free_slug(db, claim.label or claim.title or "lms-course"),
                    title=(claim.title or claim.label or "LMS course")[:200])
    db.add(course)
    db.flush()
    return course


def _free_slug(db: Session, text: str) -> str:
    base = SLUG.sub("-", text.lower()).strip("-")[:50] or "lms-course"
    taken = set(db.scalars(select(Course.slug).where(Course.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    return next(f"{base}-{n}" for n in range(2, 10_000) if f"{base}-{n}" not in taken)


@dataclass(frozen=True)
class LinkClaim:
    resource_link_id: str
    title: str = ""
    lineitem_url: str | None = None
    ags_scopes: tuple[str, ...] = field(default_factory=tuple)


def ensure_link(db: Session, context: LtiContext, claim: LinkClaim,
                wanted_assignment: str = "") -> LtiResourceLink:
    """The resource link row; a new one is mapped to the course's assignment named by
    the ``dlgrade_assignment`` custom parameter, if there is one."""
    if not claim.resource_link_id:
        raise LtiError("the launch has no resource link id.")
    row = db.scalars(select(LtiResourceLink).where(
        LtiResourceLink.platform_id == context.platform_id,
        LtiResourceLink.resource_link_id == claim.resource_link_id)).first()
    if row is None:
        row = LtiResourceLink(platform_id=context.platform_id, context_row_id=context.id,
                              resource_link_id=claim.resource_link_id)
        db.add(row)
    elif row.context_row_id != context.id:
        raise LtiError("this link belongs to another LMS course.")
    if row.assignment_id is None and wanted_assignment:
        row.assignment_id = db.scalar(select(Assignment.id).where(
            Assignment.course_id == context.course_id, Assignment.slug == wanted_assignment))
    row.title = (claim.title or row.title)[:300]
    row.lineitem_url = claim.lineitem_url or row.lineitem_url
    if claim.ags_scopes:
        row.ags_scopes = " ".join(sorted(set(claim.ags_scopes)))
    db.flush()
    return row


def link_assignment(db: Session, link: LtiResourceLink, assignment_id: int) -> None:
    course_id = link.context.course_id
    found = db.get(Assignment, assignment_id)
    if found is None or found.course_id != course_id:
        raise LtiError("choose an assignment of this course.")
    link.assignment_id = assignment_id
    db.flush()


# Short-lived state (OIDC state, nonces, launch data, one-time entry links).

def state_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def put_state(db: Session, raw_key: str, value: Any, seconds: float,
              now: datetime | None = None) -> None:
    key = state_key(raw_key)
    expires = (now or utcnow()) + timedelta(seconds=seconds)
    found = db.get(LtiState, key)
    if found is None:
        db.add(LtiState(key=key, value=value, expires_at=expires))
    else:
        found.value, found.expires_at = value, expires
    db.flush()


def get_state(db: Session, raw_key: str, now: datetime | None = None) -> Any:
    found = db.get(LtiState, state_key(raw_key))
    if found is None or found.expires_at <= (now or utcnow()):
        return None
    return found.value


def take_state(db: Session, raw_key: str, now: datetime | None = None) -> Any:
    """The value, deleted in the same statement as it is read: of two requests racing
    for one nonce or one entry link, only one gets it."""
    value = get_state(db, raw_key, now)
    if value is None:
        return None
    gone = db.execute(delete(LtiState).where(LtiState.key == state_key(raw_key))
                      .execution_options(synchronize_session=False))
    return value if rowcount(gone) == 1 else None


def purge_states(db: Session, now: datetime | None = None) -> int:
    gone = db.execute(delete(LtiState).where(LtiState.expires_at <= (now or utcnow()))
                      .execution_options(synchronize_session=False))
    return rowcount(gone)


@dataclass
class SyncReport:
    """What a roster sync did (one sentence for the staff page)."""

    enrolled: int = 0
    updated: int = 0
    removed: int = 0
    skipped: int = 0

    def sentence(self) -> str:
        return (f"{self.enrolled} enrolled, {self.updated} already there, {self.removed} "
                f"removed as inactive, {self.skipped} skipped (no course role).")


def apply_members(db: Session, context: LtiContext, members: Sequence[dict[str, Any]]
                  ) -> SyncReport:
    """Accounts and enrollments from an NRPS membership list: active members with a
    course role are enrolled (staff never demoted); inactive or deleted students are
    removed from the course (their account and submissions stay)."""
    report = SyncReport()
    platform, course = context.platform, context.course
    for member in members:
        role = course_role(str(r) for r in member.get("roles") or [])
        sub = str(member.get("user_id") or "")
        if role is None or not sub:
            report.skipped += 1
            continue
        person = Person(sub, str(member.get("email") or ""), str(member.get("name") or ""))
        try:
            user = ensure_user(db, platform, person)
        except LtiError:
            report.skipped += 1
            continue
        current = db.scalars(select(Enrollment).where(Enrollment.user_id == user.id,
                                                      Enrollment.course_id == course.id)).first()
        if str(member.get("status") or "Active") != "Active":
            if current is not None and current.role == "student":
                db.delete(current)
                report.removed += 1
            continue
        if current is None:
            report.enrolled += 1
        else:
            report.updated += 1
        enroll(db, user, course, role)
    db.flush()
    return report
