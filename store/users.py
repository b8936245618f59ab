"""Accounts and API tokens.

Passwords are stored as werkzeug hashes; API tokens are random strings shown once and
stored only as their sha256, so a copy of the database yields no usable token. These
functions add and flush; the caller commits.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from store.models import ROLES, ApiToken, User, utcnow

TOKEN_PREFIX = "dlg_"
TOUCH_EVERY = timedelta(minutes=1)
# A real hash to compare against when the e-mail is unknown, so that a wrong e-mail and
# a wrong password take the same time (no account enumeration by timing).
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


class UserError(ValueError):
    """The account cannot be created as asked; the message says why."""


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(db: Session, email: str, password: str, role: str = "student",
                name: str = "") -> User:
    """Add a user (e-mail case-insensitive and unique) with a hashed password."""
    address = normalise_email(email)
    if "@" not in address:
        raise UserError(f"{email!r} is not an e-mail address.")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}.")
    if not password:
        raise UserError("a password is required.")
    if find_user(db, address) is not None:
        raise UserError(f"a user with the e-mail {address} already exists.")
    user = User(email=address, name=name, role=role, password_hash=generate_password_hash(password))
    db.add(user)
    db.flush()
    return user


def find_user(db: Session, email: str) -> User | None:
    address = normalise_email(email)
    return db.scalars(select(User).where(func.lower(User.email) == address)).first()


def set_password(user: User, password: str) -> None:
    if not password:
        raise UserError("a password is required.")
    user.password_hash = generate_password_hash(password)


def authenticate(db: Session, email: str, password: str) -> User | None:
    """The user with this e-mail and password, else None."""
    user = find_user(db, email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(db: Session, user: User, name: str = "", scopes: str = "") -> str:
    """Create an API token for ``user``; returns the raw token (the only time it exists).
    ``scopes`` is space-separated and already validated (web.scopes); "" means the
    defaults of the user's role."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.add(ApiToken(user_id=user.id, token_hash=hash_token(raw), name=name, scopes=scopes))
    db.flush()
    return raw


def token_for(db: Session, raw: str) -> ApiToken | None:
    """The token ``raw`` (with its user), else None.

    A use is recorded in ``last_used_at`` (at most once a minute) in a short transaction
    of its own, so ``db`` is left without pending writes.
    """
    if not raw or len(raw) > 200:
        return None
    token = db.scalars(select(ApiToken).where(ApiToken.token_hash == hash_token(raw))).first()
    if token is None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        with Session(db.get_bind()) as own, own.begin():
            own.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
    return token


def user_for_token(db: Session, raw: str) -> User | None:
    """The owner of the token ``raw``, else None."""
    token = token_for(db, raw)
    return token.user if token is not None else None


def revoke_tokens(db: Session, user: User) -> int:
    """Delete every token of ``user``; returns how many there were."""
    tokens = db.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).all()
    for token in tokens:
        db.delete(token)
    db.flush()
    return len(tokens)
