"""store/users.py: accounts, password checks and API tokens."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from store.db import SessionFactory
from store.models import ApiToken
from store.users import (
    UserError,
    authenticate,
    create_token,
    create_user,
    revoke_tokens,
    user_for_token,
)


def test_a_user_authenticates_with_a_case_insensitive_email(sqlite_factory: SessionFactory) -> None:
    with sqlite_factory() as db:
        user = create_user(db, " Ada@Example.org ", "s3cret", role="staff", name="Ada")
        db.commit()
        assert user.email == "ada@example.org" and user.may_create_courses and user.name == "Ada"
        assert user.password_hash != "s3cret"
        assert authenticate(db, "ADA@example.org", "s3cret") is user
        assert authenticate(db, "ada@example.org", "wrong") is None
        assert authenticate(db, "nobody@example.org", "s3cret") is None


@pytest.mark.parametrize(
    ("email", "password", "role", "message"),
    [
        ("not-an-address", "pw", "student", "not an e-mail address"),
        ("a@example.org", "", "student", "a password is required"),
        ("a@example.org", "pw", "wizard", "role must be one of"),
    ],
)
def test_bad_accounts_are_refused(sqlite_factory: SessionFactory, email: str, password: str,
                                  role: str, message: str) -> None:
    with sqlite_factory() as db, pytest.raises(UserError, match=message):
        create_user(db, email, password, role=role)


def test_an_email_is_taken_once(sqlite_factory: SessionFactory) -> None:
    with sqlite_factory() as db:
        create_user(db, "a@example.org", "pw")
        with pytest.raises(UserError, match="already exists"):
            create_user(db, "A@EXAMPLE.ORG", "pw")


def test_a_token_is_shown_once_and_stored_hashed(db_factory: SessionFactory) -> None:
    with db_factory() as db:
        user = create_user(db, "a@example.org", "pw")
        raw = create_token(db, user, name="laptop")
        db.commit()
        stored = db.scalars(select(ApiToken)).one()
        assert stored.token_hash == hashlib.sha256(raw.encode()).hexdigest()
        assert raw not in stored.token_hash and stored.last_used_at is None
        assert user_for_token(db, raw) is user
        assert user_for_token(db, raw + "x") is None
        assert user_for_token(db, "") is None
    with db_factory() as db:
        assert db.scalars(select(ApiToken)).one().last_used_at is not None


def test_revoked_tokens_stop_working(sqlite_factory: SessionFactory) -> None:
    with sqlite_factory() as db:
        user = create_user(db, "a@example.org", "pw")
        raws = [create_token(db, user) for _ in range(2)]
        db.commit()
        assert revoke_tokens(db, user) == 2
        db.commit()
        assert all(user_for_token(db, raw) is None for raw in raws)
