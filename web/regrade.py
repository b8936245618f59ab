"""Regrading: put finished submissions back in the queue as if they had just arrived,
one (:func:`requeue`) or a whole assignment (:func:`requeue_all`).

The score a reset row had is kept first (``score_history``, in the same transaction),
so the student still sees it next to the new one and is told the regrade happened;
staff adjustments are rows of their own and stay."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from store.leases import rowcount
from store.models import Submission, TestScore
from store.queries import gradebook
from store.web_models import ScoreHistory

# The columns of a fresh upload, as the worker expects to find them.
RESET: dict[str, object] = dict(
    status="queued", attempt=0, lease_until=None, worker=None, enqueued_at=None,
    started_at=None, finished_at=None, score=None, max_score=None,
    grading_seconds=None, results=None, error=None, staff_detail=None,
)
BUSY = "This submission is being graded right now; regrade it once it has finished."


class CannotRegrade(Exception):
    pass


def _keep_scores(db: Session, ids: list[int], by: int | None) -> dict[int, ScoreHistory]:
    """History rows for the finished ones among ``ids`` (added once they are reset)."""
    rows = db.execute(select(Submission.id, Submission.score, Submission.max_score,
                             Submission.status, Submission.finished_at)
                      .where(Submission.id.in_(ids), Submission.status.in_(FINISHED))).all()
    tests: dict[int, list[dict[str, object]]] = {}
    for t in db.scalars(select(TestScore).where(TestScore.submission_id.in_(ids))
                        .order_by(TestScore.position)):
        tests.setdefault(t.submission_id, []).append(
            {"name": t.name, "score": t.score, "max_score": t.max_score,
             "visibility": t.visibility})
    return {int(i): ScoreHistory(submission_id=i, score=score, max_score=top, status=status,
                                 graded_at=finished, regraded_by_id=by, tests=tests.get(i, []))
            for i, score, top, status, finished in rows}


def requeue(db: Session, submission: Submission, by: int | None = None) -> None:
    """Reset ``submission`` to ``queued`` with attempt 0 and no result, and commit.

    Only a ``done``, ``error`` or ``queued`` row is reset: a ``running`` one still has a
    worker holding its lease, which would write its result over the new attempt.
    The update is conditional on the status, so a worker claiming the row in between
    makes this raise instead of racing it.
    """
    if submission.status == "running":
        raise CannotRegrade(BUSY)
    kept = _keep_scores(db, [submission.id], by)
    reset = (
        update(Submission)
        .where(Submission.id == submission.id, Submission.status != "running")
        .values(**RESET)
    )
    if rowcount(db.execute(reset)) != 1:
        db.rollback()
        raise CannotRegrade(BUSY)
    db.execute(delete(TestScore).where(TestScore.submission_id == submission.id))
    db.add_all(kept.values())
    db.commit()
    db.refresh(submission)


SCOPES = ("all", "latest", "best")
FINISHED = ("done", "error")
BATCH = 200


@dataclass(frozen=True)
class RegradeReport:
    """What :func:`requeue_all` did: the requeued ids (to enqueue), and the rows it
    left alone because they were being graded or were already waiting."""

    requeued: tuple[int, ...]
    running_ids: tuple[int, ...]  # being graded right now: skipped
    queued: int

    @property
    def running(self) -> int:
        return len(self.running_ids)

    def sentence(self) -> str:
        plural = "" if len(self.requeued) == 1 else "s"
        parts = [f"Requeued {len(self.requeued)} submission{plural}"]
        if self.running:
            parts.append(f"skipped {self.running} being graded right now (regrade them once "
                         "they finish)")
        if self.queued:
            parts.append(f"{self.queued} already in the queue")
        return "; ".join(parts) + "."


def chosen(db: Session, assignment_id: int, scope: str) -> list[int]:
    """The submission ids that ``scope`` names: every submission, or each student's
    latest upload, or each student's best graded one."""
    if scope not in SCOPES:
        raise ValueError(f"unknown regrade scope {scope!r}")
    if scope == "all":
        query = select(Submission.id).where(Submission.assignment_id == assignment_id)
        return list(db.scalars(query.order_by(Submission.id)))
    rows = gradebook(db, assignment_id)
    picked = (row.latest_id if scope == "latest" else row.best_id for row in rows)
    return sorted(i for i in picked if i is not None)


def requeue_all(db: Session, assignment_id: int, scope: str = "all",
                batch: int = BATCH, resettable: tuple[str, ...] = FINISHED,
                by: int | None = None) -> RegradeReport:
    """Reset every finished (done / error) submission of ``scope`` to ``queued``, in
    batches of ``batch`` rows, each its own short transaction (a class of 500 must not
    hold one lock on the whole table while the workers want to write results).

    Like :func:`requeue`, the reset is conditional on the status, so a row a worker
    claims in between is skipped, never raced. The caller enqueues the returned ids.
    ``resettable`` may add "queued" (the API's regrade-all resets waiting rows too, as a
    regrade of each row with :func:`requeue` would).
    """
    ids = chosen(db, assignment_id, scope)
    db.commit()  # end the read transaction before the batches
    requeued: list[int] = []
    running: list[int] = []
    queued = 0
    for start in range(0, len(ids), batch):
        done, left = _requeue_batch(db, ids[start:start + batch], resettable, by)
        requeued.extend(done)
        running.extend(i for i, status in left if status == "running")
        queued += sum(1 for _, status in left if status == "queued")
    return RegradeReport(tuple(requeued), running_ids=tuple(running), queued=queued)


def _requeue_batch(db: Session, ids: list[int], resettable: tuple[str, ...],
                   by: int | None = None) -> tuple[list[int], list[tuple[int, str]]]:
    """Reset the rows among ``ids`` whose status is ``resettable``; their ids, and
    (id, status) of the rest."""
    kept = _keep_scores(db, ids, by)
    reset = (
        update(Submission)
        .where(Submission.id.in_(ids), Submission.status.in_(resettable))
        .values(**RESET)
        .returning(Submission.id)
        .execution_options(synchronize_session=False)
    )
    done = list(db.scalars(reset))
    if done:
        db.execute(delete(TestScore).where(TestScore.submission_id.in_(done)))
        db.add_all(kept[i] for i in done if i in kept)
    rest = db.execute(
        select(Submission.id, Submission.status)
        .where(Submission.id.in_(ids), Submission.id.not_in(done))
        .order_by(Submission.id)
    ).all()
    db.commit()
    return done, [(int(i), str(status)) for i, status in rest]
