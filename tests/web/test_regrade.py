"""web/regrade.py: regrade all (requeue_all) and the dashboard's form that calls it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Submission, TestScore
from tests.services import Recorder
from tests.web.factories import AuthActions, Factory, World, gs_test
from web.regrade import chosen, requeue_all

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def history(make: Factory, world: World) -> dict[str, Submission]:
    """Alice: a 3, then an 8 (best), then an error (latest). Bob: a 5, then running."""
    a = world.assignment
    at = [T0 + timedelta(hours=i) for i in range(5)]
    return {
        "alice_low": make.graded(world.alice, a, [gs_test(1, "t", 3, 10)], created_at=at[0]),
        "alice_best": make.graded(world.alice, a, [gs_test(1, "t", 8, 10)], created_at=at[1]),
        "alice_error": make.submission(world.alice, a, status="error", attempt=3,
                                       error="crashed", created_at=at[2]),
        "bob_done": make.graded(world.bob, a, [gs_test(1, "t", 5, 10)], created_at=at[3]),
        "bob_running": make.submission(world.bob, a, status="running", attempt=1,
                                       worker="w1", created_at=at[4]),
    }


def status_of(db: Session, submission: Submission) -> str:
    db.expire_all()
    found = db.get(Submission, submission.id)
    assert found is not None
    return found.status


def test_chosen_scopes(db: Session, world: World, history: dict[str, Submission]) -> None:
    ids = {name: s.id for name, s in history.items()}
    assert chosen(db, world.assignment.id, "all") == sorted(ids.values())
    assert chosen(db, world.assignment.id, "latest") == [ids["alice_error"], ids["bob_running"]]
    assert chosen(db, world.assignment.id, "best") == [ids["alice_best"], ids["bob_done"]]
    with pytest.raises(ValueError, match="unknown regrade scope"):
        chosen(db, world.assignment.id, "some")


def test_requeue_all_resets_finished_rows_and_skips_running(
    db: Session, world: World, history: dict[str, Submission]
) -> None:
    report = requeue_all(db, world.assignment.id, "all", batch=2)  # three batches
    finished = ["alice_low", "alice_best", "alice_error", "bob_done"]
    assert sorted(report.requeued) == sorted(history[n].id for n in finished)
    assert (report.running, report.queued) == (1, 0)
    db.expire_all()
    for name in finished:
        row = db.get(Submission, history[name].id)
        assert row is not None
        assert (row.status, row.attempt, row.score, row.results, row.error, row.worker) == (
            "queued", 0, None, None, None, None)
    assert db.scalars(select(TestScore)).all() == []
    assert status_of(db, history["bob_running"]) == "running"
    assert "Requeued 4 submissions; skipped 1 being graded" in report.sentence()


def test_requeue_all_twice_counts_the_waiting_ones(db: Session, world: World,
                                                   history: dict[str, Submission]) -> None:
    requeue_all(db, world.assignment.id, "best")
    again = requeue_all(db, world.assignment.id, "best")
    assert again.requeued == ()
    assert again.queued == 2
    assert status_of(db, history["alice_low"]) == "done"  # not in the "best" scope


def test_regrade_all_form_requeues_and_enqueues(
    client: FlaskClient, auth: AuthActions, db: Session, world: World,
    history: dict[str, Submission], enqueuer: Recorder,
) -> None:
    auth.login(world.staff.email)
    url = f"/staff/assignments/{world.assignment.id}/regrade"
    unconfirmed = client.post(url, data={"csrf_token": auth.token(), "scope": "all"},
                              follow_redirects=True)
    assert "Tick the confirmation box" in unconfirmed.get_data(as_text=True)
    assert status_of(db, history["alice_low"]) == "done"
    assert client.post(url, data={"scope": "all", "confirm": "yes"}).status_code == 400  # CSRF
    page = client.post(url, data={"csrf_token": auth.token(), "scope": "latest",
                                  "confirm": "yes"}, follow_redirects=True)
    text = page.get_data(as_text=True)
    assert "Requeued 1 submission; skipped 1 being graded right now" in text
    assert enqueuer.calls == [(history["alice_error"].id, "cpu")]
    assert status_of(db, history["alice_error"]) == "queued"


def test_students_cannot_regrade_all(client: FlaskClient, auth: AuthActions, world: World,
                                     history: dict[str, Submission], db: Session) -> None:
    auth.login(world.alice.email)
    response = client.post(f"/staff/assignments/{world.assignment.id}/regrade",
                           data={"csrf_token": auth.token(), "scope": "all", "confirm": "yes"})
    assert response.status_code == 403
    assert status_of(db, history["alice_best"]) == "done"
