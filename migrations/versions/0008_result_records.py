"""Stored results become dlgrade's record (grader.results.GradingResult.to_record): the
Gradescope document the worker stored is converted, with each test's outcome and staff
detail from its test_scores row and the late policy as fields (the worker's prose note is
taken out of the output). ``submissions.score`` becomes the graded points, before the late
penalty: the score that counts is computed when shown (store.scores, grader.scoring).

Self-contained on purpose: a migration must keep working however the code moves on.

Revision ID: 0008_result_records
Revises: 0007_web_grading
Create Date: 2027-01-12
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008_result_records"
down_revision = "0007_web_grading"
branch_labels = None
depends_on = None

RECORD = 2
LATE_NOTE = re.compile(r"\ASubmitted \d+ days? late: the score of [^\n]* is reduced by "
                       r"[^\n]*% to [^\n]*\.(\n\n|\Z)")
OUTCOMES = {"passed", "failed", "timeout", "oom", "crash", "error", "killed"}

submissions = sa.table(
    "submissions", sa.column("id", sa.Integer), sa.column("assignment_id", sa.Integer),
    sa.column("status", sa.String), sa.column("late_days", sa.Integer),
    sa.column("score", sa.Float), sa.column("results", sa.JSON), sa.column("error", sa.Text))
assignments = sa.table("assignments", sa.column("id", sa.Integer), sa.column("slug", sa.String),
                       sa.column("late_penalty_per_day", sa.Float))
test_scores = sa.table(
    "test_scores", sa.column("submission_id", sa.Integer), sa.column("position", sa.Integer),
    sa.column("number", sa.String), sa.column("name", sa.String),
    sa.column("outcome", sa.String), sa.column("staff_detail", sa.Text))


def _rows() -> list[Any]:
    query = (sa.select(submissions.c.id, submissions.c.status, submissions.c.late_days,
                       submissions.c.results, submissions.c.error, assignments.c.slug,
                       assignments.c.late_penalty_per_day)
             .join(assignments, assignments.c.id == submissions.c.assignment_id)
             .where(submissions.c.results.is_not(None)))
    return list(op.get_bind().execute(query))


def _details(submission_id: int) -> dict[tuple[str, str], tuple[str, str]]:
    query = sa.select(test_scores.c.number, test_scores.c.name, test_scores.c.outcome,
                      test_scores.c.staff_detail).where(
        test_scores.c.submission_id == submission_id)
    return {(str(number), str(name)): (str(outcome), str(detail or ""))
            for number, name, outcome, detail in op.get_bind().execute(query)}


def _record_test(test: dict[str, Any], details: dict[tuple[str, str], tuple[str, str]]
                 ) -> dict[str, Any]:
    key = (str(test.get("number", "")), str(test.get("name", "")))
    outcome, detail = details.get(key, ("passed" if test.get("status") == "passed" else
                                        "failed", ""))
    return {
        "name": key[1], "number": key[0], "score": float(test.get("score", 0.0)),
        "max_score": float(test.get("max_score", 0.0)),
        "outcome": outcome if outcome in OUTCOMES else "error",
        "output": str(test.get("output", "")), "visibility": str(test.get("visibility",
                                                                          "visible")),
        "tags": list(test.get("tags") or []), "staff_detail": detail,
        "extra_data": dict(test.get("extra_data") or {}), "metrics": {},
    }


def upgrade() -> None:
    bind = op.get_bind()
    for row in _rows():
        document = dict(row.results)
        if document.get("record") == RECORD:
            continue
        details = _details(row.id)
        tests = [_record_test(t, details) for t in document.get("tests") or []
                 if isinstance(t, dict)]
        record = {
            "record": RECORD, "assignment": row.slug,
            "execution_time": float(document.get("execution_time", 0.0)),
            "output": LATE_NOTE.sub("", str(document.get("output") or ""), count=1),
            "visibility": str(document.get("visibility", "visible")),
            "stdout_visibility": str(document.get("stdout_visibility", "hidden")),
            "sandbox": "", "rejected": row.error if row.status == "error" else None,
            "variant": None,
            "late": {"days": int(row.late_days or 0),
                     "per_day": float(row.late_penalty_per_day or 0.0)},
            "tests": tests, "leaderboard": [e for e in document.get("leaderboard") or []
                                            if isinstance(e, dict)],
        }
        graded = round(sum(t["score"] for t in tests), 4)
        bind.execute(sa.update(submissions).where(submissions.c.id == row.id)
                     .values(results=record, score=graded))


def _penalty(late: dict[str, Any]) -> float:
    days, per_day = int(late.get("days", 0)), float(late.get("per_day", 0.0))
    return 0.0 if days <= 0 or per_day <= 0 else min(1.0, days * per_day)


def downgrade() -> None:
    """Back to the Gradescope document with the worker's late note and penalised score."""
    bind = op.get_bind()
    for row in _rows():
        record = dict(row.results)
        if record.get("record") != RECORD:
            continue
        tests = record.get("tests") or []
        graded = sum(float(t["score"]) for t in tests)
        late = record.get("late") or {}
        penalty = _penalty(late)
        score = round(graded * (1.0 - penalty), 4)
        output = str(record.get("output") or "")
        if penalty:
            days = int(late["days"])
            note = (f"Submitted {days} day{'' if days == 1 else 's'} late: the score of "
                    f"{graded:g} is reduced by {penalty * 100:g}% to {score:g}.")
            output = f"{note}\n\n{output}" if output else note
        document: dict[str, Any] = {
            "score": score, "execution_time": round(float(record.get("execution_time", 0)), 3),
            "output": output, "visibility": record.get("visibility", "visible"),
            "stdout_visibility": record.get("stdout_visibility", "hidden"),
            "tests": [{"name": t["name"], "number": t["number"], "score": round(t["score"], 4),
                       "max_score": t["max_score"],
                       "status": "passed" if t["outcome"] == "passed" else "failed",
                       "output": t["output"], "visibility": t["visibility"], "tags": t["tags"],
                       **({"extra_data": t["extra_data"]} if t.get("extra_data") else {})}
                      for t in tests],
        }
        if record.get("leaderboard"):
            document["leaderboard"] = record["leaderboard"]
        bind.execute(sa.update(submissions).where(submissions.c.id == row.id)
                     .values(results=document, score=score))
