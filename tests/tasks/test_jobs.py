"""tasks/jobs.py: GradingJob end to end on SQLite (real grader, real archives)."""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from grader.grade import grade_archive
from grader.results import GradingResult
from grader.spec import BUILTIN_ROOT, resolve_assignment
from sandbox.backend import LocalBackend
from sandbox.process_backend import unavailable_reason
from sandbox.session import SessionDied
from store import leases
from store.db import SessionFactory
from store.models import Submission, TestScore
from tasks import health, jobs
from tasks.broker import grading_budget
from tasks.jobs import (
    ARCHIVE_MISSING,
    MISCONFIGURED,
    GradingJob,
    HostFault,
    SandboxUnavailable,
)
from tests.conftest import MYTORCH_SOLUTION, require
from tests.services import World, make_settings, tar_gz

MYTORCH_TESTS = len(resolve_assignment("mytorch-cnn").tests)


@pytest.fixture
def world(sqlite_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(sqlite_factory, tmp_path / "data")


def job_for(world: World, sqlite_url: str, worker: str = "test-worker",
            **overrides: Any) -> GradingJob:
    settings = make_settings(world.data_dir, sqlite_url, **overrides)
    return GradingJob(settings, world.db_factory, worker=worker)


def stored_tests(world: World) -> list[TestScore]:
    with world.db_factory() as db:
        return list(db.scalars(select(TestScore).order_by(TestScore.position)))


def test_the_reference_solution_is_done_with_full_marks(world: World, sqlite_url: str) -> None:
    reason = unavailable_reason()
    require(reason is None, f"the process sandbox ({reason})")
    submission_id = world.submission(world.assignment(), tar_gz(MYTORCH_SOLUTION))
    assert job_for(world, sqlite_url, sandbox="process").run(submission_id) == "done"
    row = world.get(submission_id)
    assert (row.status, row.score, row.max_score, row.attempt) == ("done", 100.0, 100.0, 1)
    assert row.lease_until is None and row.finished_at is not None and row.error is None
    assert row.results is not None and row.results["record"] == 2  # GradingResult.to_record
    stored = GradingResult.from_record(row.results)
    tests = len(resolve_assignment("mytorch-cnn").tests)
    assert (stored.score, stored.max_score, len(stored.tests)) == (100.0, 100.0, tests)
    assert row.grading_seconds is not None and row.grading_seconds > 0
    assert row.staff_detail is not None and "backend=process" in row.staff_detail
    scores = stored_tests(world)
    assert [t.position for t in scores] == list(range(tests))
    assert all(t.outcome == "passed" and t.score == t.max_score for t in scores)
    assert sum(t.max_score for t in scores) == 100


def test_a_malformed_archive_ends_in_error_with_the_reason(world: World, sqlite_url: str) -> None:
    submission_id = world.submission(world.assignment(), b"this is not a tarball at all")
    assert job_for(world, sqlite_url).run(submission_id) == "error"
    row = world.get(submission_id)
    assert row.status == "error" and row.score == 0.0
    assert row.error is not None and "not a valid" in row.error
    assert row.results is not None and str(row.results["output"]).startswith(
        "Your handin was not graded")


def test_a_job_that_raises_leaves_no_result_and_frees_the_row(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission_id = world.submission(world.assignment(), tar_gz(MYTORCH_SOLUTION))

    def explode(*args: object, **kwargs: object) -> GradingResult:
        raise RuntimeError("the grader fell over")

    monkeypatch.setattr(jobs, "grade_archive", explode)
    with pytest.raises(RuntimeError, match="fell over"):
        job_for(world, sqlite_url).run(submission_id)
    row = world.get(submission_id)
    assert (row.status, row.score, row.results) == ("running", None, None)
    assert stored_tests(world) == []
    assert row.staff_detail is not None and "the grader fell over" in row.staff_detail
    with world.db_factory() as db:
        assert leases.seconds_until_expiry(db, submission_id) == 0  # a retry may claim at once


def test_a_host_that_cannot_start_sandboxes_gives_the_job_back_uncounted(
    world: World, sqlite_url: str
) -> None:
    """An engine that is down must neither give a whole class 0 points nor use up their
    attempts: the row goes back to queued, attempt not counted, and HostFault says why."""

    class BrokenHost:
        name = "broken"

        def start(self, config: object, limits: object) -> object:
            raise SessionDied("start", "the sandbox could not start: engine unreachable")

    submission_id = world.submission(world.assignment(), tar_gz(MYTORCH_SOLUTION))
    settings = make_settings(world.data_dir, sqlite_url, max_attempts=2)
    job = GradingJob(settings, world.db_factory, worker="w", backend=BrokenHost)
    for _ in range(4):  # more often than the attempt cap
        with pytest.raises(HostFault, match="its broken sandbox does not start"):
            job.run(submission_id)
        row = world.get(submission_id)
        assert (row.status, row.attempt, row.score, row.results) == ("queued", 0, None, None)
        assert row.lease_until is None and row.worker is None and stored_tests(world) == []
    assert row.staff_detail is not None and "a host fault" in row.staff_detail
    assert "engine unreachable" in row.staff_detail


def test_a_sandbox_that_fails_only_for_this_handin_counts_as_its_attempts(
    world: World, sqlite_url: str
) -> None:
    """When a blank sandbox starts on this host, the failure was the handin's: the
    attempts are counted, and after the last one the row is an error for staff."""

    class FailsWithAHandin:
        name = "picky"

        def start(self, config: Any, limits: Any) -> Any:
            if any(Path(config.submission_dir).iterdir()):
                raise SessionDied("start", "the sandbox could not start: mount refused")
            return LocalBackend().start(config, limits)

    submission_id = world.submission(world.assignment(), tar_gz(MYTORCH_SOLUTION))
    settings = make_settings(world.data_dir, sqlite_url, max_attempts=2)
    job = GradingJob(settings, world.db_factory, worker="w", backend=FailsWithAHandin)
    for attempt in (1, 2):
        with pytest.raises(SandboxUnavailable, match="mount refused"):
            job.run(submission_id)
        assert world.get(submission_id).attempt == attempt
    assert job.run(submission_id) == "error"
    row = world.get(submission_id)
    assert (row.status, row.attempt, row.score) == ("error", 2, None)
    assert row.staff_detail is not None and "mount refused" in row.staff_detail


def test_full_scratch_space_is_a_host_fault(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handin cannot be unpacked because the worker's scratch space is full."""
    def full(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")

    submission_id = world.submission(world.assignment(), tar_gz(MYTORCH_SOLUTION))
    monkeypatch.setattr("grader.grade.tempfile.mkdtemp", full)
    monkeypatch.setattr(health, "scratch_problem", lambda folders: "its scratch space is full")
    with pytest.raises(HostFault, match="its scratch space is full"):
        job_for(world, sqlite_url).run(submission_id)
    row = world.get(submission_id)
    assert (row.status, row.attempt) == ("queued", 0)
    assert row.staff_detail is not None and "no scratch space for the handin" in row.staff_detail


def test_a_database_failure_at_the_result_write_marks_nothing_done(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission_id = world.submission(world.assignment(), b"junk")
    real_finish = leases.finish

    def finish_then_fail(db: Any, *args: Any, **kwargs: Any) -> bool:
        db.execute(update(Submission).where(Submission.id == submission_id)
                   .values(status="done"))
        db.add(TestScore(submission_id=submission_id, position=0, number="1", name="t",
                         score=1, max_score=1, outcome="passed", visibility="visible"))
        db.flush()
        raise OperationalError("UPDATE submissions", {}, Exception("server closed the connection"))

    monkeypatch.setattr(leases, "finish", finish_then_fail)
    with pytest.raises(OperationalError):
        job_for(world, sqlite_url).run(submission_id)
    assert world.get(submission_id).status == "running"
    assert stored_tests(world) == []
    monkeypatch.setattr(leases, "finish", real_finish)
    assert job_for(world, sqlite_url).run(submission_id) == "error"  # the retry: attempt 2
    assert world.get(submission_id).attempt == 2


def test_a_second_run_of_a_finished_submission_is_a_no_op(world: World, sqlite_url: str) -> None:
    submission_id = world.submission(world.assignment(), b"junk")
    job = job_for(world, sqlite_url)
    assert job.run(submission_id) == "error"
    assert job.run(submission_id) == "not-claimed"
    assert world.get(submission_id).attempt == 1


def test_a_row_with_a_live_lease_is_busy(world: World, sqlite_url: str) -> None:
    submission_id = world.submission(world.assignment(), b"junk")
    with world.db_factory() as db:
        leases.claim(db, submission_id, "someone-else", 60, 3)
    assert job_for(world, sqlite_url).run(submission_id) == "busy"


def test_a_job_that_lost_its_lease_discards_its_result(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission_id = world.submission(world.assignment(), tar_gz(MYTORCH_SOLUTION))
    real = grade_archive

    def overtaken(*args: Any, **kwargs: Any) -> GradingResult:
        with world.db_factory() as db:  # another worker claims after our lease "expired"
            db.execute(update(Submission).values(attempt=2, worker="other"))
            db.commit()
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "grade_archive", overtaken)
    assert job_for(world, sqlite_url).run(submission_id) == "not-claimed"
    row = world.get(submission_id)
    assert (row.status, row.worker, row.results) == ("running", "other", None)
    assert stored_tests(world) == []


def test_the_heartbeat_keeps_the_lease_alive(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission_id = world.submission(world.assignment(), b"junk")
    seen: list[float] = []
    real = grade_archive

    def slow(*args: Any, **kwargs: Any) -> GradingResult:
        for _ in range(6):
            time.sleep(0.5)
            with world.db_factory() as db:
                seen.append(leases.seconds_until_expiry(db, submission_id))
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "grade_archive", slow)
    assert job_for(world, sqlite_url, lease_seconds=1).run(submission_id) == "error"
    assert min(seen) > 0, f"the lease lapsed during grading: {seen}"


def test_the_attempt_cap(world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    submission_id = world.submission(world.assignment(), b"junk")

    def explode(*args: object, **kwargs: object) -> GradingResult:
        raise RuntimeError("boom")

    monkeypatch.setattr(jobs, "grade_archive", explode)
    job = job_for(world, sqlite_url, max_attempts=2)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            job.run(submission_id)
    assert job.run(submission_id) == "error"
    row = world.get(submission_id)
    assert (row.status, row.attempt) == ("error", 2)
    assert row.error == "Grading failed 2 times in a row; course staff have been notified."
    assert row.staff_detail is not None and "RuntimeError: boom" in row.staff_detail


def test_late_submissions_lose_the_penalty(world: World, sqlite_url: str) -> None:
    reason = unavailable_reason()
    require(reason is None, f"the process sandbox ({reason})")
    assignment = world.assignment(late_penalty_per_day=0.1)
    submission_id = world.submission(assignment, tar_gz(MYTORCH_SOLUTION), late_days=2)
    assert job_for(world, sqlite_url, sandbox="process").run(submission_id) == "done"
    row = world.get(submission_id)
    assert row.score == 100.0 and row.max_score == 100.0  # as graded: scored when shown
    assert row.results is not None and row.results["late"] == {"days": 2, "per_day": 0.1}
    stored = GradingResult.from_record(row.results)
    assert stored.total().total == 80.0
    document = stored.to_gradescope()
    assert document["score"] == 80.0 and str(document["output"]).startswith(
        "Submitted 2 days late: the score of 100 is reduced by 20% to 80.")
    assert sum(t.score for t in stored_tests(world)) == 100  # per-test scores as graded


def test_an_unloadable_assignment_folder_is_an_error_for_staff(
    world: World, sqlite_url: str, tmp_path: Path
) -> None:
    assignment = world.assignment(slug="gone", folder=tmp_path / "no-such-folder")
    submission_id = world.submission(assignment, b"junk")
    assert job_for(world, sqlite_url).run(submission_id) == "error"
    row = world.get(submission_id)
    assert row.error == MISCONFIGURED
    assert row.staff_detail is not None and "no spec.toml" in row.staff_detail


def test_a_missing_archive_is_an_error(world: World, sqlite_url: str) -> None:
    submission_id = world.submission(world.assignment(), b"junk")
    with world.db_factory() as db:
        db.execute(update(Submission).values(archive_sha256="f" * 64))
        db.commit()
    assert job_for(world, sqlite_url).run(submission_id) == "error"
    assert world.get(submission_id).error == ARCHIVE_MISSING


def test_concurrent_runs_grade_once(world: World, sqlite_url: str) -> None:
    submission_id = world.submission(world.assignment(), b"junk")
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def run(name: str) -> None:
        job = job_for(world, sqlite_url, worker=name)
        barrier.wait()
        outcomes.append(job.run(submission_id))

    threads = [threading.Thread(target=run, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("error") == 1  # the one that graded (a malformed archive)
    assert set(outcomes) <= {"error", "busy", "not-claimed"}
    with world.db_factory() as db:
        assert db.scalar(select(func.count(TestScore.id))) == 8  # the fallback handout's
    assert world.get(submission_id).attempt == 1


def test_an_assignment_whose_tests_outlast_the_task_limit_is_refused_at_load(
    world: World, sqlite_url: str
) -> None:
    """mytorch-cnn's test timeouts add up to more than 255 s; with a 300 s task limit a
    grading could be killed with tests left, so the job refuses it as misconfigured."""
    submission_id = world.submission(world.assignment(), tar_gz(MYTORCH_SOLUTION))
    job = job_for(world, sqlite_url, task_time_limit=300, visibility_timeout=600)
    assert job.run(submission_id) == "error"
    row = world.get(submission_id)
    assert row.error == MISCONFIGURED
    total = resolve_assignment("mytorch-cnn").tests_timeout_s
    assert total > 255
    assert row.staff_detail is not None and row.staff_detail.startswith(
        f"mytorch-cnn: its tests' timeouts add up to {total:g} s, more than the 255 s a "
        "grading may take (DLGRADE_TASK_TIME_LIMIT=300 s")


def test_every_built_in_assignment_is_graded_with_the_default_task_limit(
        tmp_path: Path) -> None:
    """A worker with the default settings refuses none of the built-in assignments (or
    any of their handout versions): cnn-rnn-transformer's tests' timeouts add up to more
    than the task limit, and its ``[sandbox] total_timeout_s`` caps the grading below it."""
    settings = make_settings(tmp_path, "sqlite://")
    refused = []
    for folder in sorted(p.parent for p in BUILTIN_ROOT.glob("*/spec.toml")):
        spec = resolve_assignment(str(folder))
        for version in [spec, *(spec.with_variant(v.name) for v in spec.variants)]:
            problem = jobs.time_limit_problem(version, settings)
            if problem is not None:
                refused.append(problem)
    assert refused == []
    capped = resolve_assignment("cnn-rnn-transformer")
    assert capped.tests_timeout_s > grading_budget(settings) >= capped.time_budget_s
