"""Models of the web features: server-side login sessions, password resets, and (in
later migrations) what course staff add around a submission. Kept apart from
``store.models`` (grading rows) so neither module grows into a catalogue; both share
one ``Base``, imported at the end of ``store.models``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
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
