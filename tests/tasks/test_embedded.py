"""tasks/embedded.py: the in-process worker of ``dlgrade serve``."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from grader.grade import grade_archive
from grader.results import GradingResult
from store.db import SessionFactory
from store.models import WorkerHeartbeat, utcnow
from tasks import heartbeat, jobs
from tasks.embedded import EmbeddedWorker
from tests.services import World, make_settings, trivial_handin, wait_for, write_assignment


@pytest.fixture
def world(sqlite_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(sqlite_factory, tmp_path / "data")


@pytest.fixture
def fast_assignment(world: World, tmp_path: Path) -> int:
    name = f"embedded_{secrets.token_hex(4)}.ok"
    folder = write_assignment(tmp_path / "fast", "fast", name, "return 1.0")
    return world.assignment(slug="fast", folder=folder)


def make_worker(world: World, sqlite_url: str, **overrides: Any) -> EmbeddedWorker:
    settings = make_settings(world.data_dir, sqlite_url, **overrides)
    return EmbeddedWorker(settings, world.db_factory, poll_interval=60)


def status_of(world: World, submission_id: int) -> str:
    return world.get(submission_id).status


def test_it_grades_the_queue_oldest_first_and_wakes_on_demand(
    world: World, sqlite_url: str, fast_assignment: int, tmp_path: Path
) -> None:
    archive = trivial_handin(tmp_path / "handin")
    start = utcnow() - timedelta(minutes=1)
    ids = [world.submission(fast_assignment, archive, created_at=start + timedelta(seconds=n))
           for n in range(3)]
    worker = make_worker(world, sqlite_url)
    worker.start()
    try:
        wait_for(lambda: all(status_of(world, i) == "done" for i in ids), 20, what="grading")
        finished = [world.get(i).finished_at for i in ids]
        assert finished == sorted(finished)  # type: ignore[type-var]
        late = world.submission(fast_assignment, archive)
        worker.wake()  # the poll interval is a minute: only the wake explains a quick grade
        wait_for(lambda: status_of(world, late) == "done", 10, what="the woken worker")
    finally:
        worker.stop(timeout=10)
    assert worker._thread is None


def test_rows_of_a_dead_embedded_worker_are_graded_again_at_start(
    world: World, sqlite_url: str, fast_assignment: int, tmp_path: Path
) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname()
    archive = trivial_handin(tmp_path / "handin")
    lease = utcnow() + timedelta(minutes=5)
    orphan = world.submission(fast_assignment, archive, status="running", attempt=1,
                              worker=f"embedded@{host}:{dead}", lease_until=lease)
    alive = world.submission(fast_assignment, archive, status="running", attempt=1,
                             worker=f"embedded@{host}:1", lease_until=lease)
    foreign = world.submission(fast_assignment, archive, status="running", attempt=1,
                               worker=f"cpu.{dead}@elsewhere:{dead}", lease_until=lease)
    worker = make_worker(world, sqlite_url)
    assert worker.recover() == 1
    worker.start()
    try:
        wait_for(lambda: status_of(world, orphan) == "done", 20, what="the orphan")
    finally:
        worker.stop(timeout=10)
    assert world.get(orphan).attempt == 2
    assert status_of(world, alive) == "running" and status_of(world, foreign) == "running"


def test_a_submission_that_always_fails_ends_in_error_and_the_queue_moves_on(
    world: World, sqlite_url: str, fast_assignment: int, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    archive = trivial_handin(tmp_path / "handin")
    poison = world.submission(fast_assignment, b"poison",
                              created_at=utcnow() - timedelta(minutes=1))
    fine = world.submission(fast_assignment, archive)
    real = grade_archive

    def grade(spec: Any, path: Path, *args: Any, **kwargs: Any) -> GradingResult:
        if path.read_bytes() == b"poison":
            raise RuntimeError("the grader crashed on this one")
        return real(spec, path, *args, **kwargs)

    monkeypatch.setattr(jobs, "grade_archive", grade)
    worker = make_worker(world, sqlite_url, max_attempts=2)
    worker.start()
    try:
        wait_for(lambda: status_of(world, fine) == "done", 30, what="the good submission")
        wait_for(lambda: status_of(world, poison) == "error", 30, what="the poison one")
    finally:
        worker.stop(timeout=10)
    row = world.get(poison)
    assert row.error == "Grading failed 2 times in a row; course staff have been notified."


def test_it_beats_while_idle_and_names_what_it_grades(
    world: World, sqlite_url: str, fast_assignment: int, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int | None] = []
    real = grade_archive

    def grade(spec: Any, path: Path, *args: Any, **kwargs: Any) -> GradingResult:
        wait_for(lambda: _beat_of(world, worker.name)[1] is not None, 10, interval=0.05,
                 what="a beat naming the submission")
        seen.append(_beat_of(world, worker.name)[1])
        return real(spec, path, *args, **kwargs)

    monkeypatch.setattr(jobs, "grade_archive", grade)
    worker = make_worker(world, sqlite_url, heartbeat_interval=0.1)
    worker.start()
    try:
        first = wait_for(lambda: _beat_of(world, worker.name)[0], 10, what="the first beat")
        wait_for(lambda: _beat_of(world, worker.name)[0] > first, 10, what="an idle beat")
        submission = world.submission(fast_assignment, trivial_handin(tmp_path / "handin"))
        worker.wake()
        wait_for(lambda: status_of(world, submission) == "done", 20, what="grading")
        wait_for(lambda: _beat_of(world, worker.name)[1] is None, 10, what="idle again")
    finally:
        worker.stop(timeout=10)
    assert seen == [submission]


def test_a_failing_database_does_not_stop_the_heartbeat(
    world: World, sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        raise OperationalError("UPDATE", {}, Exception("database is locked"))

    monkeypatch.setattr(heartbeat, "beat", broken)
    worker = make_worker(world, sqlite_url, heartbeat_interval=0.05)
    worker.start()
    try:
        wait_for(lambda: len(calls) >= 3, 10, what="beats that keep trying")
        assert worker.heartbeat.thread is not None and worker.heartbeat.thread.is_alive()
    finally:
        worker.stop(timeout=10)
    assert worker.heartbeat.beats == 0


def _beat_of(world: World, name: str) -> tuple[datetime | None, int | None]:
    with world.db_factory() as db:
        row = db.scalars(select(WorkerHeartbeat).where(WorkerHeartbeat.worker == name)).first()
        return (row.last_seen_at, row.submission_id) if row else (None, None)
