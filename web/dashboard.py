"""The figures of an assignment's staff dashboard: score histogram, pass rate of every
test, submissions per hour around the deadline, and the live queue panel.

Plain functions over the session; :mod:`web.charts` draws them. Which submission counts
for a student: their *best* graded one (highest stored score, the earliest on a tie,
as in :func:`store.queries.gradebook`) for both the histogram and the pass rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from store.leases import lease_expired
from store.models import Assignment, Submission, TestScore
from store.queries import GradebookRow, queue_stats
from web import charts, waiting
from web import workers as alive_workers
from web.formatting import zone
from web.visibility import submissions_close

HOUR = timedelta(hours=1)
BEFORE_DUE = timedelta(hours=48)
AFTER_DUE = timedelta(hours=24)  # shown after the due date when there is no late window
LONGEST_LATE = timedelta(hours=72)  # a week-long late window would squash the bars
HALF = 440  # charts drawn side by side: a narrower viewBox keeps their text readable


def score_histogram(rows: Sequence[GradebookRow], max_score: float, bins: int = 10) -> str:
    best = [r.best_score for r in rows if r.best_score is not None]
    missing = len(rows) - len(best)
    desc = (f"Best score of {len(best)} students in {bins} bins from 0 to "
            f"{max_score:g} points; {missing} without a graded submission are not counted.")
    return charts.histogram(charts.bins(best, max_score, bins),
                            title="Best score per student", desc=desc, width=HALF)


def pass_rates(db: Session, rows: Sequence[GradebookRow]) -> list[charts.Rate]:
    """Per test, how many students' best submissions passed it; most failed first."""
    best_ids = [r.best_id for r in rows if r.best_id is not None]
    if not best_ids:
        return []
    passed = func.sum(case((TestScore.outcome == "passed", 1), else_=0))
    found = db.execute(
        select(TestScore.number, TestScore.name, func.count(TestScore.id), passed)
        .where(TestScore.submission_id.in_(best_ids))
        .group_by(TestScore.number, TestScore.name)
    ).all()
    rates = [charts.Rate(f"{number} {name}".strip(), int(ok or 0), int(total))
             for number, name, total, ok in found]
    return sorted(rates, key=lambda r: (r.fraction, _number_key(r.label)))


def _number_key(label: str) -> tuple[int, ...]:
    head = label.split(" ", 1)[0]
    try:
        return tuple(int(part) for part in head.split("."))
    except ValueError:
        return ()


def pass_rate_chart(rates: Sequence[charts.Rate]) -> str:
    return charts.rate_chart(
        rates, title="Pass rate per test",
        desc="Share of students whose best graded submission passed each test, "
             "the tests failed most first.")


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    due: datetime | None

    @property
    def hours(self) -> int:
        return max(1, int((self.end - self.start) / HOUR))


def window(assignment: Assignment, now: datetime) -> Window:
    """48 h before the due date to the end of the late window (at most 72 h; 24 h when
    there is none). Without a due date, or while it is more than 48 h away, the last
    48 h up to now (the due date is then not on the axis)."""
    due = assignment.due_at
    if due is None or now < due - BEFORE_DUE:
        end = now.replace(minute=0, second=0, microsecond=0) + HOUR
        return Window(end - BEFORE_DUE, end, None)
    close = submissions_close(assignment) or due
    after = min(max(close - due, AFTER_DUE), LONGEST_LATE)
    return Window(due - BEFORE_DUE, due + after, due)


def hourly_counts(db: Session, assignment_id: int, span: Window) -> list[int]:
    created = db.scalars(select(Submission.created_at).where(
        Submission.assignment_id == assignment_id,
        Submission.created_at >= span.start, Submission.created_at < span.end))
    counts = [0] * span.hours
    for moment in created:
        index = int((moment - span.start) / HOUR)
        if 0 <= index < len(counts):
            counts[index] += 1
    return counts


def per_hour_chart(counts: Sequence[int], span: Window, timezone: str = "UTC") -> str:
    """Uploads per hour, the x axis labelled with dates and times every 12 hours (in
    the course's time zone), each bar's tooltip saying its hour and how far from the
    due date it is."""
    bars = []
    place = zone(timezone)
    for i, number in enumerate(counts):
        start = span.start + i * HOUR
        local = start.astimezone(place)
        offset = (start - span.due) / HOUR if span.due else None
        label = f"{local:%d %b %H:%M}"
        relative = f" ({offset:+.0f} h from the due date)" if offset is not None else ""
        tip = (f"{local:%a %d %b %H:00}–{(start + HOUR).astimezone(place):%H:00} "
               f"{local.tzname()}: {number} submissions{relative}")
        late = offset is not None and offset >= 0
        bars.append(charts.Bar(label, number, tip, "bar late" if late else "bar"))
    marker = (span.due - span.start) / HOUR if span.due else None
    due = span.due.astimezone(place) if span.due else None
    due_label = f"due {due:%a %d %b %H:%M} {due.tzname()}" if due else ""
    return charts.bar_chart(
        bars, title="Submissions per hour",
        desc=f"Uploads per hour from {span.start:%d %b %H:%M} to {span.end:%d %b %H:%M} UTC"
             + (", the due date marked." if span.due else "."),
        y_label="uploads", marker=marker, marker_label=due_label, label_every=12, width=HALF,
        slanted=True)


def live(db: Session, assignment: Assignment, now: datetime,
         alive_within_s: int = alive_workers.ALIVE_WITHIN_S) -> dict[str, Any]:
    """The live panel: this assignment's queue and the whole service's (workers are
    shared by every assignment), and the workers heard from in ``alive_within_s``."""
    service = queue_stats(db, now)
    return {
        "assignment": asdict(_counts(db, now, Submission.assignment_id == assignment.id)),
        "service": {**service, **workers(db, now)},
        "workers": alive_workers.state(db, now, service["queued"], alive_within_s).to_json(),
        "drain": waiting.drain(db, assignment.queue, now, alive_within_s),
        "at": now.isoformat(),
    }


@dataclass(frozen=True)
class Counts:
    queued: int
    running: int
    done_last_hour: int
    error_last_hour: int
    oldest_queued_s: int | None  # how long the oldest queued row has waited


def _counts(db: Session, now: datetime, *scope: Any) -> Counts:
    stats = queue_stats(db, now, *scope)
    # Since it was last put in the queue: a regraded row waits from its requeue, not
    # from its upload (publishing records enqueued_at; an unpublished row has only
    # its upload time).
    waiting = func.coalesce(Submission.enqueued_at, Submission.created_at)
    oldest = db.scalar(select(func.min(waiting)).where(*scope)
                       .where(Submission.status == "queued"))
    return Counts(**stats, oldest_queued_s=_seconds_since(oldest, now))


def _seconds_since(moment: datetime | None, now: datetime) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite's min() bypasses the column type
        moment = datetime.fromisoformat(str(moment)).replace(tzinfo=now.tzinfo)
    return max(0, int((now - moment).total_seconds()))


def workers(db: Session, now: datetime) -> dict[str, int]:
    """Workers grading now (distinct holders of an unexpired lease) and workers that
    finished something in the last hour (alive recently, maybe idle now)."""
    active = db.scalar(select(func.count(func.distinct(Submission.worker))).where(
        Submission.status == "running", ~lease_expired(now), Submission.worker.is_not(None)))
    recent = db.scalar(select(func.count(func.distinct(Submission.worker))).where(
        Submission.finished_at >= now - HOUR, Submission.worker.is_not(None)))
    return {"workers_active": int(active or 0), "workers_last_hour": int(recent or 0)}
