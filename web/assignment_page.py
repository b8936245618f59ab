"""What the student's assignment page says about the homework: its tests (points and
when each is shown), the files to hand in, the day's submissions against the limit, and
which of the student's submissions counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from grader.spec import AssignmentSpec
from store.models import Assignment, Submission, User
from store.queries import submissions_today
from web.visibility import Shown, shown

SHOWN_WHEN = {
    "visible": "shown with your result",
    "after_due_date": "shown once submissions close",
    "hidden": "hidden from students",
    "after_published": "hidden until staff publish it",
}


@dataclass(frozen=True)
class TestRow:
    number: int
    name: str
    points: float
    visibility: str

    @property
    def shown_when(self) -> str:
        return SHOWN_WHEN.get(self.visibility, "hidden")


def test_rows(spec: AssignmentSpec, hidden_visible_after_due: bool) -> list[TestRow]:
    rows = []
    for index, test in enumerate(spec.tests, start=1):
        visibility = test.visibility
        if visibility == "hidden" and hidden_visible_after_due:
            visibility = "after_due_date"
        rows.append(TestRow(index, test.name, test.points, visibility))
    return rows


@dataclass(frozen=True)
class Today:
    used: int
    limit: int | None

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)


def today(db: Session, user: User, assignment: Assignment, now: datetime) -> Today:
    return Today(submissions_today(db, user.id, assignment.id, now), assignment.daily_limit)


@dataclass(frozen=True)
class HistoryRow:
    submission: Submission
    view: Shown | None  # None until graded
    counts: bool


def history(rows: Sequence[Submission], now: datetime,
            chosen_id: int | None = None) -> list[HistoryRow]:
    """The student's submissions, newest first, with the score they see and which one
    counts: the one they chose (where the assignment lets them), else the best graded
    one (the earliest on a tie)."""
    views = {s.id: shown(s, now, staff=False) for s in rows if s.status == "done"}
    counted = chosen_id if chosen_id in views else None
    if counted is None and views:
        counted = max(views, key=lambda i: (views[i].score, -i))
    return [HistoryRow(s, views.get(s.id), s.id == counted) for s in rows]
