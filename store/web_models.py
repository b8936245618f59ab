"""Models of the web features: server-side login sessions, password resets, and (in
later migrations) what course staff add around a submission. Kept apart from
``store.models`` (grading rows) so neither module grows into a catalogue; both share
one ``Base``, imported at the end of ``store.models``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.models import Base, User, UTCDateTime, utcnow


class UserSession(Base):
    """One browser's login. The cookie holds a random token; only its sha256 is stored,
    so logging out, a password change or "log out everywhere" ends the session on the
    server whatever the browser keeps."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    address: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship()


class PasswordReset(Base):
    """A single-use link to set a new password: e-mailed when the service has SMTP,
    else issued by course staff or ``dlgrade users reset-link``. Only the sha256 of its
    token is stored."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    issued_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class GradingProgress(Base):
    """What a running grading is doing: written by the grading job through the grader's
    progress callback (the test, the epoch, the curves so far), read by the results page.
    Advisory: one row per submission, overwritten, never part of the result."""

    __tablename__ = "grading_progress"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScoreAdjustment(Base):
    """Points added (or taken, if negative) by course staff to one submission, with a
    comment the student sees. Its own row, never written into the grading result, so it
    survives every regrade; applied by :mod:`grader.scoring`."""

    __tablename__ = "score_adjustments"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None)
    points: Mapped[float] = mapped_column(Float)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User | None] = relationship()


class ScoreHistory(Base):
    """A submission's score before a regrade, kept so the student (and staff) still see
    it, and so the student is told the regrade happened (``seen_at``). ``score`` is the
    graded points (the stored total before 0008); ``tests`` are what pages re-score."""

    __tablename__ = "score_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    score: Mapped[float | None] = mapped_column(Float, default=None)
    max_score: Mapped[float | None] = mapped_column(Float, default=None)
    status: Mapped[str] = mapped_column(String(16), default="done")
    # [{name, score, max_score, visibility}]: a student is shown only what they may see.
    tests: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    graded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    regraded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    regraded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None)
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class ActiveChoice(Base):
    """The submission a student chose to count, where the assignment lets them."""

    __tablename__ = "active_choices"
    __table_args__ = (UniqueConstraint("assignment_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    chosen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CodeComment(Base):
    """A staff comment on one line of one file of a submission (the student sees it)."""

    __tablename__ = "code_comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    line: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    author: Mapped[User | None] = relationship()
