"""web/gradebook.py: search and sort of the per-student table, and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from store.models import Assignment, Course, Extension
from store.queries import GradebookRow
from web.gradebook import (
    CSV_HEADER,
    TableQuery,
    csv_filename,
    csv_text,
    safe_cell,
    table,
)

DUE = datetime(2026, 3, 20, 23, 59, tzinfo=UTC)


def row(user_id: int, email: str, best: float | None, attempts: int = 1, name: str = "",
        late: int = 0, latest: float | None = None) -> GradebookRow:
    return GradebookRow(
        user_id=user_id, email=email, name=name, attempts=attempts,
        latest_id=user_id * 10 if attempts else None, latest_status="done" if attempts else None,
        latest_score=latest if latest is not None else best, latest_at=None,
        best_id=user_id * 10 if best is not None else None, best_score=best,
        max_score=100.0 if best is not None else None, best_late_days=late,
    )


ROWS = [row(1, "carol@x.edu", 70, 3, "Carol Chen"), row(2, "alice@x.edu", 95, 1, "Alice Ames"),
        row(3, "bob@x.edu", None, 0), row(4, "dave@x.edu", 70, 5, late=2)]


def emails(query: TableQuery, extensions: dict[int, Extension] | None = None) -> list[str]:
    return [r.row.email for r in table(ROWS, extensions or {}, query)]


def test_default_is_by_email() -> None:
    assert emails(TableQuery()) == ["alice@x.edu", "bob@x.edu", "carol@x.edu", "dave@x.edu"]


def test_sort_by_best_puts_missing_scores_last_either_way() -> None:
    assert emails(TableQuery(sort="best")) == ["carol@x.edu", "dave@x.edu", "alice@x.edu",
                                               "bob@x.edu"]
    assert emails(TableQuery(sort="best", descending=True)) == [
        "alice@x.edu", "carol@x.edu", "dave@x.edu", "bob@x.edu"]


def test_sort_by_attempts_late_and_extension() -> None:
    assert emails(TableQuery(sort="attempts", descending=True))[:2] == ["dave@x.edu", "carol@x.edu"]
    assert emails(TableQuery(sort="late", descending=True))[0] == "dave@x.edu"
    extended = {3: Extension(due_at=DUE)}
    assert emails(TableQuery(sort="extension"), extended)[0] == "bob@x.edu"


def test_search_matches_email_or_name_in_any_case() -> None:
    assert emails(TableQuery(q="CHEN")) == ["carol@x.edu"]
    assert emails(TableQuery(q="ali")) == ["alice@x.edu"]
    assert emails(TableQuery(q="nobody")) == []


def test_query_from_args_cleans_unknown_values() -> None:
    assert TableQuery.from_args({"sort": "password", "dir": "sideways", "q": "  a "}) == \
        TableQuery(q="a", sort="student", descending=False)
    query = TableQuery.from_args({"sort": "best", "dir": "desc"})
    assert query.link("best") == {"q": "", "sort": "best", "dir": "asc"}  # flips
    assert query.link("attempts") == {"q": "", "sort": "attempts", "dir": "asc"}
    assert TableQuery(sort="best").link("best")["dir"] == "desc"


@pytest.mark.parametrize("value, expected", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"), ("+1", "'+1"), ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("alice", "alice"), (None, ""), (3, "3"),
])
def test_safe_cell(value: object, expected: str) -> None:
    assert safe_cell(value) == expected


def test_csv_has_a_header_and_one_row_per_student() -> None:
    evil = row(5, "eve@x.edu", 10, name="=cmd|'/C calc'!A0")
    lines = table([*ROWS, evil], {2: Extension(due_at=DUE)}, TableQuery())
    parsed = list(csv.reader(io.StringIO(csv_text(lines, 100.0))))
    assert tuple(parsed[0]) == CSV_HEADER
    by_email = {r[0]: r for r in parsed[1:]}
    assert len(parsed) == 6
    assert by_email["alice@x.edu"] == ["alice@x.edu", "Alice Ames", "95", "100", "95", "1", "0",
                                       "2026-03-20T23:59:00Z"]
    assert by_email["bob@x.edu"] == ["bob@x.edu", "", "", "100", "", "0", "0", ""]
    assert by_email["dave@x.edu"][6] == "2"
    assert by_email["eve@x.edu"][1] == "'=cmd|'/C calc'!A0"


def test_csv_filename_is_safe() -> None:
    assignment = Assignment(slug='cnn";\r\nX: y', title="t")
    assignment.course = Course(slug="dl 101/../", title="c")
    name = csv_filename(assignment)
    assert name == "dl_101_.._-cnn_X_y-gradebook.csv"
    assert all(c.isalnum() or c in "._-" for c in name)
