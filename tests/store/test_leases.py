"""store/leases.py: the claim protocol on SQLite and Postgres."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store import leases
from store.db import SessionFactory
from store.models import TestScore, utcnow
from tests.services import World

LEASE = 30.0


@pytest.fixture
def world(db_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(db_factory, tmp_path / "data")


def queued(world: World) -> int:
    return world.submission(world.assignment(), b"not really an archive")


def claim(world: World, submission_id: int, worker: str = "w1", **kwargs: object) -> leases.Claim:
    with world.db_factory() as db:
        return leases.claim(db, submission_id, worker, LEASE, 3, **kwargs)  # type: ignore[arg-type]


def test_a_queued_row_is_claimed_with_attempt_one(world: World) -> None:
    submission_id = queued(world)
    got = claim(world, submission_id)
    assert (got.status, got.attempt) == ("claimed", 1)
    row = world.get(submission_id)
    assert (row.status, row.attempt, row.worker) == ("running", 1, "w1")
    assert row.lease_until == got.lease_until and row.started_at is not None


def test_a_live_lease_makes_a_second_claim_busy(world: World) -> None:
    submission_id = queued(world)
    first = claim(world, submission_id)
    second = claim(world, submission_id, "w2")
    assert second.status == "busy" and second.lease_until == first.lease_until
    assert world.get(submission_id).attempt == 1


def test_an_expired_lease_is_claimed_again_with_the_next_attempt(world: World) -> None:
    submission_id = queued(world)
    claim(world, submission_id)
    later = utcnow() + timedelta(seconds=LEASE + 1)
    again = claim(world, submission_id, "w2", now=later)
    assert (again.status, again.attempt) == ("claimed", 2)
    assert world.get(submission_id).worker == "w2"


def test_a_finished_or_missing_row_is_not_claimed(world: World) -> None:
    submission_id = queued(world)
    got = claim(world, submission_id)
    with world.db_factory() as db:
        assert leases.finish(db, submission_id, got.attempt, "w1", {"status": "done"}, [])
    assert claim(world, submission_id, "w2").status == "not-claimed"
    assert claim(world, 10_000).status == "not-claimed"


def test_finish_only_for_the_claimed_attempt_and_worker(world: World) -> None:
    submission_id = queued(world)
    first = claim(world, submission_id)
    later = utcnow() + timedelta(seconds=LEASE + 1)
    second = claim(world, submission_id, "w2", now=later)
    score = TestScore(position=0, number="1", name="t", score=1, max_score=1, outcome="passed",
                      visibility="visible", output="", staff_detail="")
    with world.db_factory() as db:
        assert not leases.finish(db, submission_id, first.attempt, "w1", {"status": "done"},
                                 [score])
        assert not leases.renew(db, submission_id, first.attempt, "w1", LEASE)
        assert db.scalar(select(func.count(TestScore.id))) == 0
        assert leases.finish(db, submission_id, second.attempt, "w2",
                             {"status": "done", "score": 1.0}, [score])
    row = world.get(submission_id)
    assert (row.status, row.score, row.attempt, row.lease_until) == ("done", 1.0, 2, None)


def test_the_attempt_cap_ends_in_error(world: World) -> None:
    submission_id = queued(world)
    now = utcnow()
    for attempt in (1, 2, 3):
        got = claim(world, submission_id, f"w{attempt}", now=now)
        assert (got.status, got.attempt) == ("claimed", attempt)
        now += timedelta(seconds=LEASE + 1)
    with world.db_factory() as db:
        leases.release(db, submission_id, 3, "w3", "Traceback: boom", now=now)
    got = claim(world, submission_id, "w4", now=now)
    assert (got.status, got.attempt) == ("exhausted", 3)
    row = world.get(submission_id)
    assert (row.status, row.attempt, row.lease_until) == ("error", 3, None)
    assert row.error == "Grading failed 3 times in a row; course staff have been notified."
    assert row.staff_detail is not None and "Traceback: boom" in row.staff_detail
    assert claim(world, submission_id, "w5", now=now).status == "not-claimed"


def test_release_expires_the_lease_at_once(world: World) -> None:
    submission_id = queued(world)
    got = claim(world, submission_id)
    with world.db_factory() as db:
        assert leases.seconds_until_expiry(db, submission_id) > LEASE - 5
        assert leases.release(db, submission_id, got.attempt, "w1", "why")
        assert leases.seconds_until_expiry(db, submission_id) == 0
    assert claim(world, submission_id, "w2").attempt == 2


def race(world: World, submission_id: int, contenders: int) -> list[str]:
    """``contenders`` threads, each with its own connection, claim at the same moment."""
    barrier = threading.Barrier(contenders)
    outcomes: list[str] = []

    def contend(name: str) -> None:
        barrier.wait()
        outcomes.append(claim(world, submission_id, name).status)

    threads = [threading.Thread(target=contend, args=(f"w{n}",)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_claims_have_exactly_one_winner(world: World) -> None:
    assignment = world.assignment()
    for n in range(5):
        submission_id = world.submission(assignment, f"archive {n}".encode())
        assert sorted(race(world, submission_id, 6)) == ["busy"] * 5 + ["claimed"]
        assert world.get(submission_id).attempt == 1


def test_requeue_gives_a_host_fault_back_uncounted(world: World) -> None:
    submission_id = queued(world)
    got = claim(world, submission_id)
    with world.db_factory() as db:
        assert not leases.requeue(db, submission_id, got.attempt, "w2", "not mine")
        assert leases.requeue(db, submission_id, got.attempt, "w1", "scratch space full")
    row = world.get(submission_id)
    assert (row.status, row.attempt, row.worker, row.lease_until) == ("queued", 0, None, None)
    assert row.staff_detail == "scratch space full" and row.enqueued_at is not None
    assert claim(world, submission_id, "w2").attempt == 1  # the next worker's first attempt


def test_a_dead_holders_lease_is_broken_and_the_attempt_counted(world: World) -> None:
    submission_id = queued(world)
    got = claim(world, submission_id, "node:41")
    assert claim(world, submission_id, "node:42").status == "busy"
    with world.db_factory() as db:
        assert leases.holder(db, submission_id) == ("node:41", 1)
        assert not leases.break_lease(db, submission_id, "node:99", got.attempt)
        assert leases.break_lease(db, submission_id, "node:41", got.attempt)
        assert not leases.break_lease(db, submission_id, "node:41", got.attempt)  # once
    again = claim(world, submission_id, "node:42")
    assert (again.status, again.attempt) == ("claimed", 2)
