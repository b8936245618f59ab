"""Password-reset links: random, single use, valid for a day; only their sha256 is
stored. Issuing one for an account voids its earlier unused ones, and using one ends
every login session of the account. Flushes; the caller commits."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from store.models import User, utcnow
from store.sessions import end_all_sessions
from store.users import set_password
from store.web_models import PasswordReset

VALID_FOR = timedelta(hours=24)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def issue_reset(db: Session, user: User, issued_by: User | None = None,
                now: datetime | None = None) -> str:
    """A new reset token for ``user`` (the raw value, for the link); older ones void."""
    moment = now or utcnow()
    db.execute(update(PasswordReset).where(PasswordReset.user_id == user.id,
                                           PasswordReset.used_at.is_(None))
               .values(used_at=moment))
    raw = secrets.token_urlsafe(32)
    db.add(PasswordReset(token_hash=_hash(raw), user_id=user.id, created_at=moment,
                         expires_at=moment + VALID_FOR,
                         issued_by_id=issued_by.id if issued_by else None))
    db.flush()
    return raw


def pending_reset(db: Session, raw: str, now: datetime | None = None) -> PasswordReset | None:
    """The unused, unexpired reset of ``raw``, else None."""
    if not raw or len(raw) > 100:
        return None
    found = db.scalars(select(PasswordReset).where(PasswordReset.token_hash == _hash(raw))).first()
    if found is None or found.used_at is not None or found.expires_at <= (now or utcnow()):
        return None
    return found


def use_reset(db: Session, reset: PasswordReset, password: str,
              now: datetime | None = None) -> int:
    """Set the new password, spend the link, end every session; how many ended."""
    set_password(reset.user, password)
    reset.used_at = now or utcnow()
    db.flush()
    return end_all_sessions(db, reset.user_id)
