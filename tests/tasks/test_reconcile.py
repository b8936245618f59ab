"""tasks/reconcile.py: what the broker lost is published again from the database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from store.db import SessionFactory
from store.models import utcnow
from tasks.reconcile import reconcile
from tests.services import Recorder, World, make_settings


@pytest.fixture
def world(db_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(db_factory, tmp_path / "data")


def test_stranded_rows_are_published_and_live_ones_left_alone(world: World) -> None:
    settings = make_settings(world.data_dir, "sqlite://", queued_stale_after=60)
    now = utcnow()
    cpu, gpu = world.assignment(), world.assignment(slug="g", queue="gpu")
    rows = {
        "never published": world.submission(cpu, b"1", created_at=now - timedelta(seconds=1)),
        "published long ago": world.submission(gpu, b"2", enqueued_at=now - timedelta(hours=1)),
        "lease expired": world.submission(cpu, b"3", status="running",
                                          enqueued_at=now - timedelta(seconds=5),
                                          lease_until=now - timedelta(seconds=1)),
        "just published": world.submission(cpu, b"4", enqueued_at=now - timedelta(seconds=5)),
        "live lease": world.submission(cpu, b"5", status="running",
                                       enqueued_at=now - timedelta(hours=1),
                                       lease_until=now + timedelta(seconds=30)),
        "done": world.submission(cpu, b"6", status="done"),
        "error": world.submission(cpu, b"7", status="error"),
    }
    recorder = Recorder()
    assert reconcile(world.db_factory, recorder, settings, now=now) == 3
    assert sorted(recorder.calls) == sorted([
        (rows["never published"], "cpu"), (rows["published long ago"], "gpu"),
        (rows["lease expired"], "cpu"),
    ])
    assert world.get(rows["lease expired"]).status == "running"  # the claim decides
    assert all(world.get(rows[k]).enqueued_at is not None for k in ("never published",))
    again = Recorder()
    assert reconcile(world.db_factory, again, settings) == 0  # once per stale period
    assert again.calls == []


def test_a_broker_that_is_down_stops_the_pass_and_marks_nothing(world: World) -> None:
    settings = make_settings(world.data_dir, "sqlite://")
    assignment = world.assignment()
    ids = [world.submission(assignment, bytes([n])) for n in range(3)]
    down = Recorder(up=False)
    assert reconcile(world.db_factory, down, settings) == 0
    assert len(down.calls) == 1
    assert all(world.get(i).enqueued_at is None for i in ids)


def test_a_pass_is_bounded(world: World) -> None:
    settings = make_settings(world.data_dir, "sqlite://")
    assignment = world.assignment()
    start = utcnow() - timedelta(minutes=5)
    ids = [world.submission(assignment, bytes([n]), created_at=start + timedelta(seconds=n))
           for n in range(5)]
    recorder = Recorder()
    assert reconcile(world.db_factory, recorder, settings, batch=2) == 2
    assert [call[0] for call in recorder.calls] == ids[:2]  # oldest first
    assert reconcile(world.db_factory, recorder, settings, batch=10) == 3
