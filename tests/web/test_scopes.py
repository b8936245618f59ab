"""web/scopes.py: the vocabulary, role defaults and what a stored string grants."""

from __future__ import annotations

import pytest

from web.scopes import SCOPES, STUDENT_SCOPES, ScopeError, effective, grantable, missing


def test_empty_means_the_role_defaults() -> None:
    assert effective("", "student") == STUDENT_SCOPES
    assert effective("  ", "staff") == frozenset(SCOPES)


def test_stored_scopes_are_kept_and_staff_ones_dropped_for_students() -> None:
    assert effective("submissions:read", "staff") == {"submissions:read"}
    assert effective("regrade submissions:read", "student") == {"submissions:read"}
    assert effective("bogus", "staff") == frozenset()


def test_grantable_orders_and_refuses() -> None:
    assert grantable(["submissions:read", "assignments:read"], "student") == \
        "assignments:read submissions:read"
    assert grantable([], "staff") == ""
    with pytest.raises(ScopeError, match="staff scope 'webhooks'"):
        grantable(["webhooks"], "student")
    with pytest.raises(ScopeError, match="unknown scope 'root'"):
        grantable(["root"], "admin")


def test_missing_names_the_scope() -> None:
    assert missing("regrade").startswith("This API token lacks the scope 'regrade'")
