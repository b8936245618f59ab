"""API token scopes: the one vocabulary, the defaults of each role, and the checks.

A token's ``scopes`` column holds space-separated names from :data:`SCOPES`. An empty
string (tokens made before scopes existed, or without ``--scope``) means the defaults of
the owner's role. Students can never hold a staff scope: it is refused when the token
is made, and dropped when read (in case the owner was demoted since). Staff scopes act
only on the courses the owner is staff of (the lookups in ``web.lookups`` scope them).
"""

from __future__ import annotations

from collections.abc import Iterable

SCOPES: dict[str, str] = {
    "assignments:read": "list and read assignments",
    "submissions:read": "read submissions (your own; staff: the course's)",
    "submissions:write": "upload submissions",
    "scores:read": "export an assignment's scores (staff)",
    "regrade": "regrade submissions (staff)",
    "webhooks": "manage the course's webhooks (staff)",
}
STUDENT_SCOPES = frozenset({"assignments:read", "submissions:read", "submissions:write"})
STAFF_SCOPES = frozenset(SCOPES)


class ScopeError(ValueError):
    """A scope list that cannot be granted; the message says why."""


def allowed(role: str) -> frozenset[str]:
    """Every scope a token of a user with ``role`` may hold."""
    return STAFF_SCOPES if role in ("staff", "admin") else STUDENT_SCOPES


def defaults(role: str) -> frozenset[str]:
    """What an empty scopes string means: everything the role may do."""
    return allowed(role)


def parse(text: str) -> frozenset[str]:
    """The scopes in a space-separated string; raises :class:`ScopeError` on an
    unknown name."""
    names = frozenset(text.split())
    unknown = sorted(names - set(SCOPES))
    if unknown:
        raise ScopeError(f"unknown scope {unknown[0]!r}; the scopes are {', '.join(SCOPES)}.")
    return names


def grantable(names: Iterable[str], role: str) -> str:
    """The scopes string to store for a new token of a ``role`` user (validated)."""
    wanted = parse(" ".join(names))
    refused = sorted(wanted - allowed(role))
    if refused:
        raise ScopeError(f"a {role} token cannot have the staff scope {refused[0]!r}.")
    return " ".join(name for name in SCOPES if name in wanted)


def effective(stored: str, role: str) -> frozenset[str]:
    """What a token may do now: its scopes (or the role's defaults when empty), less
    anything the role no longer allows; unknown names are ignored."""
    if not stored.strip():
        return defaults(role)
    return frozenset(stored.split()) & allowed(role)


def missing(scope: str) -> str:
    """The 403 sentence for a token without ``scope``."""
    return (f"This API token lacks the scope '{scope}' ({SCOPES[scope]}); "
            f"create one with --scope {scope}.")
