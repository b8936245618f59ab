"""Server-side login sessions (:class:`store.web_models.UserSession`).

The browser's signed cookie carries only a random token; the row decides whether it
still means a login. Ending a session deletes its row, so a copied cookie is useless
after logout, and a password change ends every session of the account. These
functions flush; the caller commits (``touch`` commits its own short transaction).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store.leases import rowcount
from store.models import User, utcnow
from store.web_models import UserSession

LIFETIME = timedelta(days=14)
TOUCH_EVERY = timedelta(minutes=1)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def start_session(db: Session, user: User, *, user_agent: str = "", address: str = "",
                  now: datetime | None = None, lifetime: timedelta = LIFETIME) -> str:
    """A new session for ``user``; returns the raw token for the cookie (never stored)."""
    moment = now or utcnow()
    raw = secrets.token_urlsafe(32)
    db.add(UserSession(token_hash=_hash(raw), user_id=user.id, created_at=moment,
                       last_seen_at=moment, expires_at=moment + lifetime,
                       user_agent=user_agent[:300], address=address[:64]))
    db.flush()
    return raw


def find_session(db: Session, raw: object, now: datetime | None = None) -> UserSession | None:
    """The live session of the token ``raw``, else None (unknown, ended or expired).
    A use is recorded at most once a minute, in a transaction of its own."""
    if not isinstance(raw, str) or not raw or len(raw) > 100:
        return None
    moment = now or utcnow()
    found = db.scalars(select(UserSession).where(UserSession.token_hash == _hash(raw))).first()
    if found is None or found.expires_at <= moment:
        return None
    if moment - found.last_seen_at > TOUCH_EVERY:
        with Session(db.get_bind()) as own, own.begin():
            own.execute(update(UserSession).where(UserSession.id == found.id)
                        .values(last_seen_at=moment))
    return found


def end_session(db: Session, raw: object) -> bool:
    """Delete the session of ``raw``; True if there was one."""
    if not isinstance(raw, str) or not raw:
        return False
    return rowcount(db.execute(delete(UserSession).where(UserSession.token_hash == _hash(raw)))) > 0


def end_all_sessions(db: Session, user_id: int, *, keep: str | None = None) -> int:
    """Delete every session of ``user_id`` (except the one of ``keep``); how many."""
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep:
        query = query.where(UserSession.token_hash != _hash(keep))
    return rowcount(db.execute(query))


def user_sessions(db: Session, user_id: int, now: datetime | None = None) -> list[UserSession]:
    """The account's live sessions, most recently used first."""
    moment = now or utcnow()
    return list(db.scalars(select(UserSession).where(
        UserSession.user_id == user_id, UserSession.expires_at > moment)
        .order_by(UserSession.last_seen_at.desc())))


def is_current(row: UserSession, raw: object) -> bool:
    return isinstance(raw, str) and secrets.compare_digest(row.token_hash, _hash(raw))
