"""store/scheduling.py: one turn per student (issue 12, item 8)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from store import queries, scheduling
from store.db import SessionFactory
from store.models import User, utcnow
from tests.services import World


@pytest.fixture
def world(db_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(db_factory, tmp_path / "data")


def student(world: World, name: str) -> int:
    with world.db_factory() as db:
        user = User(email=f"{name}@example.org", password_hash="x")
        db.add(user)
        db.commit()
        return user.id


def test_a_student_whose_gradings_take_long_waits_for_the_others(world: World) -> None:
    """Hog uploads three handins at once whose grading takes 5 minutes each; Ann and Ben
    upload one each a minute later. Once hog's first is done, Ann and Ben go before hog's
    second and third (first come, first served would run hog's three first)."""
    assignment = world.assignment()
    now = utcnow()
    t0 = now - timedelta(minutes=5)
    hog, ann, ben = world.user_id, student(world, "ann"), student(world, "ben")
    world.submission(assignment, b"h1", created_at=t0, status="done", attempt=1,
                     started_at=t0, finished_at=now)
    hog2, hog3 = (world.submission(assignment, bytes([n]), created_at=t0 + timedelta(seconds=n))
                  for n in (1, 2))
    anns = world.submission(assignment, b"a", user_id=ann, created_at=t0 + timedelta(minutes=1))
    bens = world.submission(assignment, b"b", user_id=ben, created_at=t0 + timedelta(minutes=2))
    with world.db_factory() as db:
        found = scheduling.order(db, ["cpu"], now)
        assert [item.id for item in found.waiting] == [anns, bens, hog2, hog3]
        assert found.usual_s == 300
        assert scheduling.next_up(db, ["cpu"], now) == anns
        assert queries.queue_position(db, world.get(hog3)) == 4
    assert hog != ann


def test_work_being_graded_counts_against_its_student(world: World) -> None:
    """While hog's first has been graded for 5 minutes, Ann's later upload goes before
    hog's second; a moment into it, it would not (gradings are usually short)."""
    assignment = world.assignment()
    now = utcnow()
    t0 = now - timedelta(minutes=6)
    ann = student(world, "ann")
    first = world.submission(assignment, b"1", created_at=t0, status="running", attempt=1,
                             worker="w", started_at=now - timedelta(minutes=5),
                             lease_until=now + timedelta(seconds=60))
    second = world.submission(assignment, b"2", created_at=t0 + timedelta(seconds=1))
    anns = world.submission(assignment, b"3", user_id=ann, created_at=t0 + timedelta(minutes=1))
    with world.db_factory() as db:
        assert scheduling.next_up(db, ["cpu"], now) == anns
        assert [queries.queue_position(db, world.get(i)) for i in (first, anns, second)] \
            == [1, 2, 3]
        ahead = scheduling.place(db, world.get(second), now)
        assert ahead is not None and ahead.position == 3
        assert [a.started_at is not None for a in ahead.ahead] == [True, False, False]
        early = now - timedelta(minutes=5) + timedelta(seconds=5)
        assert scheduling.next_up(db, ["cpu"], early) == second  # 5 s in: its turn


def test_queues_are_apart_and_an_abandoned_row_waits_its_turn(world: World) -> None:
    cpu, gpu = world.assignment(), world.assignment(slug="g", queue="gpu")
    now = utcnow()
    on_gpu = world.submission(gpu, b"g", created_at=now - timedelta(minutes=5))
    abandoned = world.submission(cpu, b"a", status="running", attempt=1,
                                 lease_until=now - timedelta(seconds=1),
                                 created_at=now - timedelta(minutes=4))
    with world.db_factory() as db:
        assert scheduling.next_up(db, ["cpu"], now) == abandoned
        assert scheduling.next_up(db, ["gpu"], now) == on_gpu
        assert scheduling.next_up(db, None, now) == on_gpu  # the oldest of all
        assert scheduling.next_up(db, ["cpu"], now, exclude=[abandoned]) is None
