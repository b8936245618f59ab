"""The Celery worker host's heartbeat (tasks/heartbeat.py as tasks/worker_main.py sets it up)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from store.db import SessionFactory
from store.models import Submission, WorkerHeartbeat, utcnow
from tasks.heartbeat import Heartbeat, held_by_node
from tasks.periodic import Periodic
from tasks.worker_main import worker_info
from tests.services import World, make_settings, wait_for


@pytest.fixture
def world(sqlite_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(sqlite_factory, tmp_path / "data")


def periodic(world: World, sqlite_url: str, **overrides: Any) -> Heartbeat:
    settings = make_settings(world.data_dir, sqlite_url, gpus="", **overrides)
    info = worker_info(settings, ["cpu", "gpu"], "docker; GPUs: 0", concurrency=2)
    return Heartbeat(info, settings.heartbeat_interval, held_by_node(info.worker),
                     database_url=settings.database_url)


def rows(world: World) -> list[WorkerHeartbeat]:
    with world.db_factory() as db:
        return list(db.scalars(select(WorkerHeartbeat)))


def test_a_beat_names_the_submission_a_pool_child_holds(world: World, sqlite_url: str) -> None:
    heart = periodic(world, sqlite_url)
    node = heart.info.worker
    assert node.startswith("cpu-gpu.") and heart.info.queues == "cpu,gpu"
    assignment = world.assignment()
    lease = utcnow() + timedelta(minutes=2)
    held = world.submission(assignment, b"x", status="running", worker=f"{node}:4242",
                            lease_until=lease, started_at=utcnow())
    world.submission(assignment, b"y", status="running", worker="cpu.1@elsewhere:4242",
                     lease_until=lease, started_at=utcnow())
    assert heart.beat(world.db_factory)
    [row] = rows(world)
    assert (row.worker, row.submission_id, row.sandbox) == (node, held, "docker; GPUs: 0")
    assert row.slots == 2  # the pool's concurrency
    with world.db_factory() as db:
        db.get_one(Submission, held).status = "done"
        db.commit()
    assert heart.beat(world.db_factory)
    assert [r.submission_id for r in rows(world)] == [None]


def test_a_failing_database_is_logged_not_raised(world: World, sqlite_url: str,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    heart = periodic(world, sqlite_url)

    def down() -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    assert heart.beat(down) is False  # type: ignore[arg-type]
    assert f"heartbeat of {heart.info.worker} failed" in caplog.text


def test_the_thread_beats_every_interval_until_shutdown(world: World, sqlite_url: str) -> None:
    heart = periodic(world, sqlite_url, heartbeat_interval=0.05)
    heart.start_on_signal()
    try:
        first = wait_for(lambda: [r.last_seen_at for r in rows(world)], 10, what="a beat")[0]
        wait_for(lambda: rows(world)[0].last_seen_at > first, 10, what="a second beat")
    finally:
        heart.stop_on_signal()
        assert heart.thread is not None
        heart.thread.join(5)
    assert not heart.thread.is_alive() and heart.beats >= 2


def test_a_periodic_thread_needs_exactly_one_way_to_reach_the_database() -> None:
    with pytest.raises(ValueError, match="either database_url or db_factory"):
        Periodic(1.0)


def test_a_failing_pass_is_logged_and_the_next_one_runs(
        sqlite_factory: SessionFactory, caplog: pytest.LogCaptureFixture) -> None:
    passes: list[int] = []

    class Flaky(Periodic):
        what = "flaky"
        at_start = True

        def run_once(self, db_factory: SessionFactory) -> None:
            passes.append(1)
            if len(passes) == 1:
                raise RuntimeError("database is down")

    flaky = Flaky(0.02, db_factory=sqlite_factory)
    flaky.start()
    try:
        wait_for(lambda: len(passes) >= 3, 10, what="passes after a failure")
    finally:
        flaky.stop(5)
    assert "flaky pass failed" in caplog.text and flaky.thread is not None
    assert not flaky.thread.is_alive()
