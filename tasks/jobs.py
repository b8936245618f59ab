"""Grading one submission: a plain class, no Celery (the tasks are shells around it).

``GradingJob.run(id)`` takes the submission of ``id``'s queue that is fairest next
(:mod:`store.scheduling`: one turn per student; ``id`` itself when nothing else waits),
claims the row (lease + attempt), grades the stored archive while a heartbeat renews
the lease, and stores the result and its per-test rows in one transaction conditional
on the claimed attempt. Duplicate deliveries and crashed workers therefore produce
exactly one result. An unexpected exception leaves nothing marked done, expires the
lease (so a retry can claim at once) and propagates.

Whose fault (issue 17): a grading that fails in a way the host could cause (no sandbox
starts, the scratch space is full, the trusted side runs out of memory) is checked
against the host itself (:func:`tasks.health.host_problem`). When the host fails on its
own, the row goes back to ``queued`` with the attempt not counted and :class:`HostFault`
propagates (the worker then reports itself unhealthy and hands the job on); otherwise
the attempt counts, and only faults of the submission end as ``error``.

Time (issue 18): the grading gets the spec's time budget, at most what the task's soft
time limit leaves (:func:`tasks.broker.grading_budget`), so it ends with its partial
results as timeouts rather than being killed; ``interrupts`` (Celery's
``SoftTimeLimitExceeded``) end it the same way. A row whose lease is held by a pool
process of this worker that is dead has its lease broken at once, not waited out.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from grader.grade import Interrupts, grade_archive
from grader.results import GradingResult
from grader.scoring import Late
from grader.spec import AssignmentSpec, SpecError, spec_for
from sandbox.backend import Backend
from store import leases, progress, scheduling
from store.archives import ArchiveStore
from store.db import SessionFactory
from store.models import Assignment, Submission, TestScore, utcnow
from tasks.broker import grading_budget
from tasks.health import HostFault, host_problem, scratch_folders
from tasks.sandboxes import Choice, GpuBusy, SandboxProvider
from tasks.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["ARCHIVE_MISSING", "MISCONFIGURED", "GradingJob", "HostFault", "JobOutcome",
           "SandboxUnavailable", "pool_process_dead", "test_rows"]

# busy: another worker holds a live lease; waiting: no GPU came free (nothing claimed).
JobOutcome = Literal["done", "error", "not-claimed", "busy", "waiting"]
PICKS = 3  # fair picks tried when another worker claims the chosen row first
MISCONFIGURED = "The grader for this assignment is misconfigured; course staff have been notified."
ARCHIVE_MISSING = "Your upload could not be found on the server; please submit it again."


@dataclass(frozen=True)
class Work:
    """What the claimed row asks for, read in the claim's wake."""

    archive_sha256: str
    late_days: int
    late_penalty_per_day: float
    slug: str
    folder: str | None


class SandboxUnavailable(RuntimeError):
    """No sandbox could be started for this handin although the host can start one: the
    attempt is released for a retry, and counted."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"no sandbox could be started, so nothing was graded: {detail}")


class Unusable(Exception):
    """The submission cannot be graded however often it is retried (student message,
    staff detail)."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.message, self.detail = message, detail


class GradingJob:
    """Grades submissions by id; one instance serves many runs (one at a time).

    The sandbox comes from ``sandboxes`` (built from the settings on first use), chosen
    per assignment before the claim, so a GPU job that finds no free GPU in time ends
    as ``waiting`` with no attempt used. ``backend`` (tests, benchmarks) fixes one.
    """

    def __init__(
        self, settings: Settings, db_factory: SessionFactory, *, worker: str | None = None,
        backend: Callable[[], Backend] | None = None, sandboxes: SandboxProvider | None = None,
        interrupts: Interrupts = (),
    ) -> None:
        self.settings = settings
        self.db_factory = db_factory
        self.worker = worker or settings.worker_name
        self.archives = ArchiveStore(settings.data_dir)
        self.backend = backend
        self.sandboxes = sandboxes
        self.interrupts = interrupts
        self.current: int | None = None  # the submission picked by the last run

    def provider(self) -> SandboxProvider:
        if self.sandboxes is None:
            self.sandboxes = SandboxProvider.from_settings(self.settings)
        return self.sandboxes

    def close(self) -> None:
        """Stop the sandboxes this job made (the warm pool); the job can still run."""
        if self.sandboxes is not None:
            self.sandboxes.close()

    def run(self, submission_id: int) -> JobOutcome:
        """Grade the fairest waiting submission of ``submission_id``'s queue (or it)."""
        tried: list[int] = []
        outcome: JobOutcome = "not-claimed"
        for _ in range(PICKS):
            target = self._pick(submission_id, tried)
            self.current = target
            outcome = self._run_one(target)
            if outcome not in ("not-claimed", "busy") or target == submission_id:
                return outcome
            tried.append(target)  # another worker took it first: pick again
        return outcome

    def _pick(self, hint: int, tried: list[int]) -> int:
        with self.db_factory() as db:
            queue = scheduling.queue_of(db, hint)
            fair = scheduling.next_up(db, [queue], utcnow(), exclude=tried) if queue else None
        return hint if fair is None else int(fair)

    def _run_one(self, submission_id: int) -> JobOutcome:
        try:
            with self._reserve(self._peek_spec(submission_id)) as choice:
                outcome = self._run_claimed(submission_id, choice)
                if outcome == "busy" and self._break_dead_lease(submission_id):
                    outcome = self._run_claimed(submission_id, choice)
                return outcome
        except GpuBusy as busy:
            log.info("submission %s: %s", submission_id, busy)
            return "waiting"

    def _break_dead_lease(self, submission_id: int) -> bool:
        """When the live lease belongs to a pool process of this worker that has died
        (SIGKILL, OOM killer), expire it now: its message was redelivered to us."""
        with self.db_factory() as db:
            held = leases.holder(db, submission_id)
            if held is None or not pool_process_dead(held[0], self.worker):
                return False
            broken = leases.break_lease(db, submission_id, held[0], held[1])
        if broken:
            log.warning("submission %s: %s died holding attempt %s; its lease is released",
                        submission_id, held[0], held[1])
        return broken

    def _reserve(self, spec: AssignmentSpec | None) -> AbstractContextManager[Choice]:
        if self.backend is not None:
            return nullcontext(Choice(self.backend()))
        if spec is None:  # unusable: the claimed run stores why, without a sandbox
            return nullcontext(Choice(self.provider().cpu))
        return self.provider().reserve(spec)

    def _peek_spec(self, submission_id: int) -> AssignmentSpec | None:
        """The assignment's spec, read before claiming (None if it cannot be had)."""
        with self.db_factory() as db:
            row = db.execute(
                select(Assignment.slug, Assignment.folder)
                .join(Submission, Submission.assignment_id == Assignment.id)
                .where(Submission.id == submission_id)
            ).first()
        if row is None:
            return None
        try:
            return spec_for(row.slug, row.folder)
        except SpecError:
            return None

    def _run_claimed(self, submission_id: int, choice: Choice) -> JobOutcome:
        with self.db_factory() as db:
            claim = leases.claim(db, submission_id, self.worker, self.settings.lease_seconds,
                                 self.settings.max_attempts)
        if claim.status == "exhausted":
            log.error("submission %s: gave up after %s attempts", submission_id, claim.attempt)
            return "error"
        if claim.status != "claimed":
            return claim.status
        log.info("submission %s: attempt %s on %s", submission_id, claim.attempt, self.worker)
        heartbeat = Heartbeat(self, submission_id, claim.attempt)
        try:
            return self._grade_and_store(submission_id, claim.attempt, choice)
        except HostFault as fault:
            heartbeat.stop()
            self._requeue(submission_id, claim.attempt, str(fault))
            raise
        except Exception:
            heartbeat.stop()  # first, or a late renewal would undo the release
            self._release(submission_id, claim.attempt, traceback.format_exc())
            raise
        finally:
            heartbeat.stop()

    def _grade_and_store(self, submission_id: int, attempt: int, choice: Choice) -> JobOutcome:
        started = time.monotonic()
        work = self._work(submission_id)
        try:
            spec, archive = self._inputs(work)
        except Unusable as unusable:
            return self._store_failure(submission_id, attempt, unusable, started)
        report = progress.recorder(self.db_factory, submission_id, attempt)  # live page
        result = grade_archive(spec, archive, choice.backend, progress=report,
                               budget_s=self._budget(started), interrupts=self.interrupts)
        if result.infrastructure_error:  # never stored as a score: whose fault is it?
            problem = host_problem(self.scratch(), choice.backend)
            if problem is not None:
                raise HostFault(problem, result.infrastructure_error)
            raise SandboxUnavailable(result.infrastructure_error)  # retried, counted
        result.staff_log.extend(choice.notes)
        return self._store(submission_id, attempt, work, result, time.monotonic() - started)

    def _budget(self, started: float) -> float:
        """Seconds the grading may take: what the task's soft time limit leaves."""
        return max(1.0, grading_budget(self.settings) - (time.monotonic() - started))

    def scratch(self) -> list[Path]:
        return scratch_folders(self.settings.sandbox_work_dir)

    def _work(self, submission_id: int) -> Work:
        with self.db_factory() as db:
            row = db.execute(
                select(Submission.archive_sha256, Submission.late_days,
                       Assignment.late_penalty_per_day, Assignment.slug, Assignment.folder)
                .join(Assignment, Submission.assignment_id == Assignment.id)
                .where(Submission.id == submission_id)
            ).one()
        return Work(row.archive_sha256, row.late_days, row.late_penalty_per_day, row.slug,
                    row.folder)

    def _inputs(self, work: Work) -> tuple[AssignmentSpec, Path]:
        try:
            spec = spec_for(work.slug, work.folder)
        except SpecError as exc:
            raise Unusable(MISCONFIGURED, str(exc)) from None
        too_long = time_limit_problem(spec, self.settings)
        if too_long is not None:
            raise Unusable(MISCONFIGURED, too_long)
        try:
            archive = self.archives.path(work.archive_sha256)
        except ValueError as exc:
            raise Unusable(ARCHIVE_MISSING, str(exc)) from None
        if not archive.is_file():
            raise Unusable(ARCHIVE_MISSING, f"{archive} does not exist")
        return spec, archive

    def _store(self, submission_id: int, attempt: int, work: Work, result: GradingResult,
               seconds: float) -> JobOutcome:
        """The record as graded, under the late policy of the moment (a field, for the
        record's readers outside the service; pages re-score under the policy in force).
        ``score`` is the graded points: the score that counts is computed when shown."""
        result.late = Late(work.late_days, work.late_penalty_per_day)
        status: JobOutcome = "error" if result.rejected is not None else "done"
        values: dict[str, Any] = {
            "status": status, "score": result.score, "max_score": result.max_score,
            "results": result.to_record(), "grading_seconds": round(seconds, 3),
            "finished_at": utcnow(),
            "error": result.rejected, "staff_detail": "\n".join(result.staff_log) or None,
        }
        return self._finish(submission_id, attempt, values, test_rows(result), status)

    def _store_failure(self, submission_id: int, attempt: int, unusable: Unusable,
                       started: float) -> JobOutcome:
        values: dict[str, Any] = {
            "status": "error", "error": unusable.message, "staff_detail": unusable.detail,
            "finished_at": utcnow(), "grading_seconds": round(time.monotonic() - started, 3),
        }
        return self._finish(submission_id, attempt, values, [], "error")

    def _finish(self, submission_id: int, attempt: int, values: dict[str, Any],
                tests: list[TestScore], status: JobOutcome) -> JobOutcome:
        with self.db_factory() as db:
            stored = leases.finish(db, submission_id, attempt, self.worker, values, tests)
        if not stored:
            log.warning("submission %s: attempt %s lost its lease; result discarded",
                        submission_id, attempt)
            return "not-claimed"
        return status

    def _requeue(self, submission_id: int, attempt: int, detail: str) -> None:
        """Best effort (the lease expires otherwise, and the attempt is then counted)."""
        try:
            with self.db_factory() as db:
                leases.requeue(db, submission_id, attempt, self.worker,
                               f"Not graded on {self.worker}, a host fault: {detail}")
        except SQLAlchemyError:
            log.warning("submission %s: could not give the row back; its lease will expire",
                        submission_id, exc_info=True)

    def _release(self, submission_id: int, attempt: int, detail: str) -> None:
        """Best effort: the database may be what failed."""
        try:
            with self.db_factory() as db:
                leases.release(db, submission_id, attempt, self.worker, detail)
        except SQLAlchemyError:
            log.warning("submission %s: could not release the lease; it will expire",
                        submission_id, exc_info=True)


def time_limit_problem(spec: AssignmentSpec, settings: Settings) -> str | None:
    """A sentence when the spec's grading may take longer than a task may: its test
    timeouts added up, or its ``[sandbox] total_timeout_s`` where that caps them (the
    grading then ends with what it has, inside the task's limit)."""
    budget = grading_budget(settings)
    if spec.time_budget_s <= budget:
        return None
    return (f"{spec.slug}: its tests' timeouts add up to {spec.tests_timeout_s:g} s, more than "
            f"the {budget:g} s a grading may take (DLGRADE_TASK_TIME_LIMIT="
            f"{settings.task_time_limit} s, less the time to stop and store); lower the "
            "timeouts, cap the grading with [sandbox] total_timeout_s, or raise "
            "DLGRADE_TASK_TIME_LIMIT (and DLGRADE_VISIBILITY_TIMEOUT).")


def pool_process_dead(holder: str, me: str, parent: int | None = None) -> bool:
    """Whether ``holder`` (``<node>:<pid>``, a lease's worker) is a pool process of the
    same worker node as ``me`` that no longer runs (or whose pid now belongs to a process
    that is not a child of ``parent``, by default our own parent: the pid was reused)."""
    node, _, pid_text = holder.rpartition(":")
    my_node = me.rpartition(":")[0]
    if not node or node != my_node or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        stat = Path(f"/proc/{int(pid_text)}/stat").read_text()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state, ppid, ...
    if len(fields) < 2 or not fields[1].isdigit():
        return False
    expected = os.getppid() if parent is None else parent
    return fields[0] in ("Z", "X") or int(fields[1]) != expected


def test_rows(result: GradingResult) -> list[TestScore]:
    return [
        TestScore(
            position=position, number=test.number, name=test.name, score=test.score,
            max_score=test.max_score, outcome=str(test.outcome), visibility=test.visibility,
            output=test.output, staff_detail=test.staff_detail,
        )
        for position, test in enumerate(result.tests)
    ]


class Heartbeat:
    """Renews the lease every lease/3 seconds in a thread, from creation until stop()."""

    def __init__(self, job: GradingJob, submission_id: int, attempt: int) -> None:
        self.job, self.submission_id, self.attempt = job, submission_id, attempt
        self.interval = max(job.settings.lease_seconds / 3, 0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True,
                                       name=f"heartbeat-{submission_id}")
        self.thread.start()

    def stop(self) -> None:
        """Idempotent. A renewal stuck on an unreachable database is not waited for long."""
        self.stopped.set()
        self.thread.join(timeout=self.interval + 5)

    def _beat(self) -> None:
        settings = self.job.settings
        while not self.stopped.wait(self.interval):
            try:
                with self.job.db_factory() as db:
                    ours = leases.renew(db, self.submission_id, self.attempt, self.job.worker,
                                        settings.lease_seconds)
            except SQLAlchemyError:
                log.warning("submission %s: lease renewal failed", self.submission_id,
                            exc_info=True)
                continue
            if not ours:
                log.warning("submission %s: attempt %s no longer holds the lease",
                            self.submission_id, self.attempt)
                return
