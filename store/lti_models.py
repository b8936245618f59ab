"""Models of LTI 1.3: the platforms (LMSs) registered with dlgrade, what their launches
map to (an LMS course to a dlgrade course, a resource link to an assignment, an LMS user
to an account), the grade passback outbox and the short-lived OIDC login state.

Kept apart from ``store.models`` (grading rows); both share one ``Base``, imported at
the end of ``store.models``. See ``docs/lti.md`` and ``web/lti.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.models import Assignment, Base, Course, User, UTCDateTime, utcnow


class LtiPlatform(Base):
    """One registration of dlgrade in an LMS: its issuer and the client id the LMS gave
    dlgrade, the deployments allowed, and the LMS's OIDC, token and key set URLs.
    A launch from anything not registered here is refused before any claim is read."""

    __tablename__ = "lti_platforms"
    __table_args__ = (UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    issuer: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(255))
    deployment_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    auth_login_url: Mapped[str] = mapped_column(String(2000))
    auth_token_url: Mapped[str] = mapped_column(String(2000))
    key_set_url: Mapped[str] = mapped_column(String(2000))
    # The "aud" of the token request's client assertion ("" = the token URL), e.g.
    # Moodle's and Canvas's own values when they differ.
    auth_audience: Mapped[str] = mapped_column(String(2000), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LtiContext(Base):
    """An LMS course (``context_id``) of a platform, mapped to a dlgrade course, with the
    NRPS membership URL its launches gave and the state of its roster sync."""

    __tablename__ = "lti_contexts"
    __table_args__ = (UniqueConstraint("platform_id", "context_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    context_id: Mapped[str] = mapped_column(String(255))
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300), default="")
    memberships_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    lineitems_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    sync_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    sync_error: Mapped[str | None] = mapped_column(Text, default=None)
    sync_summary: Mapped[str] = mapped_column(String(500), default="")

    platform: Mapped[LtiPlatform] = relationship()
    course: Mapped[Course] = relationship()


class LtiResourceLink(Base):
    """A link placed in an LMS course, mapped to one assignment (None until course
    staff choose it), with the AGS line item that dlgrade posts its scores to."""

    __tablename__ = "lti_resource_links"
    __table_args__ = (UniqueConstraint("platform_id", "resource_link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    context_row_id: Mapped[int] = mapped_column(ForeignKey("lti_contexts.id", ondelete="CASCADE"))
    resource_link_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(300), default="")
    assignment_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignments.id", ondelete="SET NULL"), default=None)
    lineitem_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    # AGS scopes the platform granted in the launch (space-separated).
    ags_scopes: Mapped[str] = mapped_column(String(1000), default="")

    context: Mapped[LtiContext] = relationship()
    assignment: Mapped[Assignment | None] = relationship()


class LtiUser(Base):
    """An LMS user (the launch's ``sub``, stable per platform) and their account."""

    __tablename__ = "lti_users"
    __table_args__ = (UniqueConstraint("platform_id", "sub"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lti_platforms.id", ondelete="CASCADE"))
    sub: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()


class LtiScore(Base):
    """The score one student should have on one resource link's line item, and what was
    last posted there: the grade passback outbox (``store.lti_scores``).

    ``version`` goes up whenever the score to post changes; a sender claims the row,
    posts that version and records it as ``posted_version`` only if the row still wants
    it, so nothing is lost (a change while posting is posted next) and an unchanged
    score is never posted twice. ``failed`` rows stay visible to staff with the error."""

    __tablename__ = "lti_scores"
    __table_args__ = (
        UniqueConstraint("link_id", "user_id"),
        Index("ix_lti_scores_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("lti_resource_links.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL"), default=None)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    comment: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=0)
    posted_version: Mapped[int] = mapped_column(Integer, default=0)
    posted_score: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|posted|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # Set when the score may have changed (a grading finished): the next pass recomputes.
    stale: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    link: Mapped[LtiResourceLink] = relationship()
    user: Mapped[User] = relationship()


class LtiState(Base):
    """Short-lived values of the OIDC login and launch (state, nonce, launch data) and
    the one-time links that carry a launch into a first-party window. Keyed by a hash,
    each with its own expiry; a nonce is deleted when used, so it cannot be replayed."""

    __tablename__ = "lti_states"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
