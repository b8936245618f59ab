"""Cursor pagination of API lists: ``?limit=N&cursor=C``.

Items come newest first by id; the cursor is the id of the last item of the previous
page, so a page never repeats or skips an item when new ones arrive meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_ID = 2**31 - 1  # ids are 32-bit integers on Postgres


class BadPage(ValueError):
    """``limit`` or ``cursor`` is malformed; the message says how."""


@dataclass(frozen=True)
class Page:
    limit: int
    before_id: int | None


def parse_page(args: Mapping[str, str]) -> Page:
    return Page(limit=_limit(args.get("limit")), before_id=_cursor(args.get("cursor")))


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadPage(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {raw[:40]!r}.")
    return int(raw)


def _cursor(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise BadPage(f"cursor {raw[:40]!r} is not one this API gave out; "
                      "pass the next_cursor of the previous page.")
    return int(raw)


def next_cursor(ids: list[int], limit: int) -> str | None:
    """The cursor of the page after one holding ``ids`` (None on the last page)."""
    return str(ids[-1]) if len(ids) == limit and ids else None
