"""tasks/embedded.py: the in-process worker of ``dlgrade serve``."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from grader.grade import grade_archive
from grader.results import GradingResult
from store.db import SessionFactory
from store.models import utcnow
from tasks import jobs
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
