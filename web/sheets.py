"""The gradebook as one sheet: students x assignments, each cell the submission that
counts (the best graded one) with its total, late days, extension and per-test scores.

One CSV format serves every export: an assignment's (the dashboard's ``gradebook.csv``
and the API's ``/assignments/SLUG/scores?format=csv``) and a course's (its gradebook
page and ``/api/v1/courses/COURSE/gradebook?format=csv``) are the same writer over one
or every assignment. Columns: ``email``, ``name``, then per assignment ``SLUG``
(the total that counts), ``SLUG max``, ``SLUG submission`` (its id), ``SLUG attempts``,
``SLUG late days``, ``SLUG extension due`` and one ``SLUG: TEST`` per test. Scores are
the staff view: every test counted, the late penalty applied.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from grader.spec import SpecError
from store import queries
from store.models import Assignment, Course, TestScore
from web import extensions, lookups
from web.gradebook import safe_cell


@dataclass(frozen=True)
class Cell:
    """One student's standing on one assignment."""

    submission_id: int | None
    total: float | None
    attempts: int
    late_days: int
    extension_due: datetime | None
    tests: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Student:
    user_id: int
    email: str
    name: str


@dataclass
class Sheet:
    assignments: list[Assignment]
    maxima: dict[int, float]
    tests: dict[int, list[str]]  # assignment id -> test names, in the spec's order
    students: list[Student]
    cells: dict[tuple[int, int], Cell]  # (user id, assignment id)

    def cell(self, student: Student, assignment: Assignment) -> Cell | None:
        return self.cells.get((student.user_id, assignment.id))

    def course_total(self, student: Student) -> float:
        return sum((self.cell(student, a) or EMPTY).total or 0.0 for a in self.assignments)


EMPTY = Cell(None, None, 0, 0, None)


def _test_names(assignment: Assignment) -> tuple[list[str], float | None]:
    try:
        spec = lookups.spec_for(assignment)
    except SpecError:
        return [], None
    return [t.name for t in spec.tests], spec.max_score


def build_sheet(db: Session, assignments: Sequence[Assignment]) -> Sheet:
    sheet = Sheet(list(assignments), {}, {}, [], {})
    students: dict[int, Student] = {}
    for assignment in assignments:
        names, top = _test_names(assignment)
        rows = queries.gradebook(db, assignment.id)
        sheet.tests[assignment.id] = names
        sheet.maxima[assignment.id] = top or max((r.max_score or 0.0 for r in rows), default=0.0)
        granted = extensions.by_user(db, assignment.id)
        per_test = _test_scores(db, [r.best_id for r in rows if r.best_id is not None])
        for r in rows:
            students.setdefault(r.user_id, Student(r.user_id, r.email, r.name))
            extension = granted.get(r.user_id)
            sheet.cells[(r.user_id, assignment.id)] = Cell(
                r.best_id, r.best_score, r.attempts, r.best_late_days,
                extension.due_at if extension else None, per_test.get(r.best_id or -1, {}))
    sheet.students = sorted(students.values(), key=lambda s: s.email)
    return sheet


def _test_scores(db: Session, submission_ids: list[int]) -> dict[int, dict[str, float]]:
    found: dict[int, dict[str, float]] = {}
    if not submission_ids:
        return found
    rows = db.execute(select(TestScore.submission_id, TestScore.name, TestScore.score)
                      .where(TestScore.submission_id.in_(submission_ids)))
    for submission_id, name, score in rows:
        found.setdefault(int(submission_id), {})[str(name)] = float(score)
    return found


def course_sheet(db: Session, course: Course) -> Sheet:
    assignments = db.scalars(select(Assignment).where(Assignment.course_id == course.id)
                             .order_by(Assignment.due_at.is_(None), Assignment.due_at,
                                       Assignment.id)).all()
    return build_sheet(db, assignments)


def _number(value: float | None) -> str:
    return "" if value is None else f"{round(value, 4):g}"


def header(sheet: Sheet) -> list[str]:
    columns = ["email", "name"]
    for a in sheet.assignments:
        columns += [a.slug, f"{a.slug} max", f"{a.slug} submission", f"{a.slug} attempts",
                    f"{a.slug} late days", f"{a.slug} extension due"]
        columns += [f"{a.slug}: {name}" for name in sheet.tests[a.id]]
    return columns


def line(sheet: Sheet, student: Student) -> list[str]:
    cells: list[object] = [student.email, student.name]
    for a in sheet.assignments:
        c = sheet.cell(student, a) or EMPTY
        due = c.extension_due.strftime("%Y-%m-%dT%H:%M:%SZ") if c.extension_due else ""
        cells += [_number(c.total), _number(sheet.maxima[a.id]), c.submission_id or "",
                  c.attempts, c.late_days, due]
        cells += [_number(c.tests.get(name)) if c.submission_id else ""
                  for name in sheet.tests[a.id]]
    return [safe_cell(value) for value in cells]


def sheet_csv(sheet: Sheet) -> str:
    """The sheet as CSV (RFC 4180, CRLF line ends), formula-safe cells."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header(sheet))
    for student in sheet.students:
        writer.writerow(line(sheet, student))
    return out.getvalue()


def filename(*parts: str) -> str:
    raw = "-".join(parts) + "-gradebook.csv"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).lstrip(".") or "gradebook.csv"
