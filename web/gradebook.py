"""The per-student table of the dashboard (search and sort, done on the server so the
page works without JavaScript) and the CSV gradebook export.

Scores are as stored: every test counted and the late penalty applied (the staff view).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from store.models import Assignment, Extension
from store.queries import GradebookRow

SORTS = ("student", "status", "latest", "best", "attempts", "late", "extension")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = ("email", "name", "best_score", "max_score", "latest_score", "attempts",
              "late_days_of_best", "extension_due")


@dataclass(frozen=True)
class StudentRow:
    """One line of the table: the gradebook row and the student's extension, if any."""

    row: GradebookRow
    extension: Extension | None


@dataclass(frozen=True)
class TableQuery:
    """``?q=&sort=&dir=``, cleaned: unknown values fall back to the defaults."""

    q: str = ""
    sort: str = "student"
    descending: bool = False

    @classmethod
    def from_args(cls, args: dict[str, str]) -> TableQuery:
        sort = args.get("sort", "student")
        return cls(q=args.get("q", "").strip()[:200],
                   sort=sort if sort in SORTS else "student",
                   descending=args.get("dir") == "desc")

    def link(self, column: str) -> dict[str, str]:
        """Query arguments of a column header: sort by it, flipping the direction when it
        is the current sort."""
        flip = column == self.sort and not self.descending
        return {"q": self.q, "sort": column, "dir": "desc" if flip else "asc"}


def _keys() -> dict[str, Callable[[StudentRow], Any]]:
    return {
        "student": lambda r: r.row.email.lower(),
        "status": lambda r: r.row.latest_status,
        "latest": lambda r: r.row.latest_score,
        "best": lambda r: r.row.best_score,
        "attempts": lambda r: r.row.attempts,
        "late": lambda r: r.row.best_late_days,
        "extension": lambda r: r.extension.due_at if r.extension else None,
    }


def matches(row: StudentRow, q: str) -> bool:
    needle = q.lower()
    return not needle or needle in row.row.email.lower() or needle in row.row.name.lower()


def table(rows: Sequence[GradebookRow], extensions: dict[int, Extension],
          query: TableQuery) -> list[StudentRow]:
    """Filtered by ``query.q`` (e-mail or name contains it, any case) and sorted by
    ``query.sort``; rows without a value (no score yet) always come last, and ties are
    broken by e-mail."""
    found = [StudentRow(r, extensions.get(r.user_id)) for r in rows]
    found = [r for r in found if matches(r, query.q)]
    key = _keys()[query.sort]
    found.sort(key=lambda r: r.row.email.lower())
    present = [r for r in found if key(r) is not None]
    missing = [r for r in found if key(r) is None]
    present.sort(key=key, reverse=query.descending)
    return present + missing


def safe_cell(value: object) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or a tab or
    carriage return) gets a leading apostrophe. Numbers we write are never negative."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _number(value: float | None) -> str:
    return "" if value is None else f"{round(value, 4):g}"


def _moment(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_text(rows: Sequence[StudentRow], max_score: float) -> str:
    """The gradebook as CSV: a header and one row per student (RFC 4180, CRLF)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for line in rows:
        r = line.row
        writer.writerow([safe_cell(cell) for cell in (
            r.email, r.name, _number(r.best_score), _number(r.max_score or max_score),
            _number(r.latest_score), r.attempts, r.best_late_days,
            _moment(line.extension.due_at if line.extension else None),
        )])
    return out.getvalue()


def csv_filename(assignment: Assignment) -> str:
    """``<course>-<assignment>-gradebook.csv`` with anything but letters, digits, dot,
    dash and underscore replaced (a header-safe, path-safe name)."""
    raw = f"{assignment.course.slug}-{assignment.slug}-gradebook.csv"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).lstrip(".") or "gradebook.csv"
