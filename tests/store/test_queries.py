"""store/queries.py: the named read queries of the web pages and the dashboard."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from store import queries
from store.db import SessionFactory
from store.models import Enrollment, User, utcnow
from tests.services import World


@pytest.fixture
def world(db_factory: SessionFactory, tmp_path: Path) -> World:
    return World.create(db_factory, tmp_path / "data")


def test_queue_position_counts_pending_rows_oldest_first(world: World) -> None:
    assignment = world.assignment()
    start = utcnow() - timedelta(minutes=10)
    ids = [
        world.submission(assignment, f"a{n}".encode(), status=status,
                         created_at=start + timedelta(minutes=n))
        for n, status in enumerate(["done", "running", "queued", "error", "queued"])
    ]
    with world.db_factory() as db:
        positions = [queries.queue_position(db, world.get(i)) for i in ids]
    assert positions == [None, 1, 2, None, 3]


def test_ties_in_created_at_are_broken_by_id(world: World) -> None:
    assignment = world.assignment()
    moment = utcnow()
    first, second = (world.submission(assignment, bytes([n]), created_at=moment) for n in (1, 2))
    with world.db_factory() as db:
        assert queries.queue_position(db, world.get(first)) == 1
        assert queries.queue_position(db, world.get(second)) == 2


def test_submissions_today_count_since_midnight(world: World) -> None:
    assignment, other = world.assignment(), world.assignment(slug="other")
    now = utcnow().replace(hour=12)
    for created in (now, now - timedelta(hours=11), now - timedelta(hours=13)):
        world.submission(assignment, str(created).encode(), created_at=created)
    world.submission(other, b"elsewhere", created_at=now)
    with world.db_factory() as db:
        assert queries.submissions_today(db, world.user_id, assignment, now) == 2
        assert queries.submissions_today(db, world.user_id + 1, assignment, now) == 0


def test_best_scores_take_the_best_graded_score(world: World) -> None:
    first, second = world.assignment(), world.assignment(slug="second")
    world.submission(first, b"1", status="done", score=40.0)
    world.submission(first, b"2", status="done", score=90.0)
    world.submission(first, b"3", status="error", score=100.0)
    world.submission(second, b"4", status="queued")
    with world.db_factory() as db:
        assert queries.best_scores(db, world.user_id) == {first: 90.0}


def test_listings_are_newest_first_with_their_relations(world: World) -> None:
    first, second = world.assignment(), world.assignment(slug="second")
    start = utcnow()
    ids = [world.submission(a, bytes([n]), created_at=start + timedelta(seconds=n))
           for n, a in enumerate([first, second, first])]
    with world.db_factory() as db:
        by_assignment = queries.assignment_submissions(db, first)
        assert [s.id for s in by_assignment] == [ids[2], ids[0]]
        assert all(isinstance(s.user, User) for s in by_assignment)
        mine = queries.user_submissions(db, world.user_id)
        assert [s.id for s in mine] == ids[::-1]
        assert [s.assignment.slug for s in mine] == ["mytorch-cnn", "second", "mytorch-cnn"]
        assert [s.id for s in queries.user_submissions(db, world.user_id, second)] == [ids[1]]
        assert [s.id for s in queries.latest_submissions(db, limit=2)] == [ids[2], ids[1]]
        assert [s.id for s in queries.latest_submissions(db, second)] == [ids[1]]


def test_queue_stats(world: World) -> None:
    assignment = world.assignment()
    now = utcnow()
    rows = [("queued", None), ("queued", None), ("running", None), ("done", now),
            ("done", now - timedelta(hours=2)), ("error", now - timedelta(minutes=5))]
    for n, (status, finished) in enumerate(rows):
        world.submission(assignment, bytes([n]), status=status, finished_at=finished)
    with world.db_factory() as db:
        assert queries.queue_stats(db, now) == {
            "queued": 2, "running": 1, "done_last_hour": 1, "error_last_hour": 1,
        }


def test_gradebook_lists_enrolled_students_with_latest_and_best(world: World) -> None:
    assignment = world.assignment()
    start = utcnow() - timedelta(hours=3)
    with world.db_factory() as db:
        course_id = world.course_id
        quiet = User(email="quiet@example.edu", password_hash="x")
        db.add(quiet)
        db.flush()
        db.add(Enrollment(user_id=quiet.id, course_id=course_id, role="student"))
        db.commit()
    world.submission(assignment, b"a", status="done", score=50.0, max_score=100.0,
                     created_at=start)
    best = world.submission(assignment, b"b", status="done", score=80.0, max_score=100.0,
                            late_days=1, created_at=start + timedelta(minutes=1))
    world.submission(assignment, b"c", status="done", score=80.0, max_score=100.0,
                     created_at=start + timedelta(minutes=2))  # a tie: the earlier one wins
    newest = world.submission(assignment, b"d", status="error",
                              created_at=start + timedelta(minutes=3))
    with world.db_factory() as db:
        rows = {row.email: row for row in queries.gradebook(db, assignment)}
    with world.db_factory() as db:
        submitter_email = db.get(User, world.user_id).email  # type: ignore[union-attr]
    submitter = rows[submitter_email]
    assert (submitter.best_id, submitter.best_score, submitter.max_score) == (best, 80.0, 100.0)
    assert submitter.best_late_days == 1
    assert (submitter.latest_id, submitter.latest_status, submitter.latest_score) == (
        newest, "error", None)
    assert submitter.attempts == 4
    never = rows["quiet@example.edu"]
    assert (never.attempts, never.best_score, never.latest_id) == (0, None, None)


def test_gradebook_of_an_unknown_assignment_is_empty(world: World) -> None:
    with world.db_factory() as db:
        assert queries.gradebook(db, 12345) == []
