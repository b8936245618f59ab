"""Issue 12, item 8: one student cannot hold the only grader while the others are told
"about 2 s to go".

One Celery worker (concurrency 1). The hog's handin makes every call sleep just under
its test's time limit and uploads it three times at once; Ann uploads a quick one a
second later. Fails before the fix: first come, first served grades all three of the
hog's (14 s each, no total cap) before Ann's, and Ann is told the queue's usual second
or so. Passes after: the grading of each of the hog's is capped by the assignment's
total time, Ann's goes second, and the wait she is told counts the grading in front of
her as the long one it is."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from grader.results import GradingResult
from store.models import Enrollment, Submission, User, utcnow
from tasks.celery_app import make_celery
from tasks.queueing import CeleryEnqueuer, submit
from tests.reliability.harness import Cluster, make_cluster
from tests.services import tar_gz, write_assignment
from web.waiting import waiting

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

NEAR_LIMIT_S = 7.0  # each call of the hog's handin: under its test's 10 s (and a sandbox start)
TOTAL_S = 12  # the assignment's total_timeout_s


def slow_calls(tmp_path: Path) -> Path:
    """Two tests of 10 s each, calling the handin's nap(); at most 12 s in all."""
    name = f"fair_{secrets.token_hex(3)}.nap"
    folder = write_assignment(tmp_path / "calls", "calls", name,
                              'ctx.session.import_module("answer").attr("nap").call()\n'
                              "return 1.0")
    spec = (folder / "spec.toml").read_text().replace("timeout_s = 120", "timeout_s = 10")
    spec += (f'\n[[tests]]\nname = "Second"\ncheck = "{name}"\npoints = 10\ntimeout_s = 10\n'
             f"\n[sandbox]\ncall_timeout_s = 10\ntotal_timeout_s = {TOTAL_S}\n")
    (folder / "spec.toml").write_text(spec)
    return folder


def handin(tmp_path: Path, name: str, seconds: float) -> bytes:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "answer.py").write_text(f"import time\n\n\ndef nap():\n    time.sleep({seconds})\n")
    return tar_gz(folder)


def test_one_student_cannot_hold_the_only_grader(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster],
) -> None:
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none",
                           lease_seconds="30")
    clusters.append(cluster)
    world = cluster.world()
    assignment = world.assignment(slug="calls", folder=slow_calls(tmp_path))
    bea, hog, ann = user_ids(cluster, world.course_id, 3)
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    quick, slow = handin(tmp_path, "quick", 0), handin(tmp_path, "slow", NEAR_LIMIT_S)
    cluster.start_worker()

    def upload(user: int, archive: bytes) -> int:
        submission_id = world.submission(assignment, archive, user_id=user)
        assert submit(cluster.db_factory, enqueuer, submission_id)
        return submission_id

    warm = [upload(bea, quick + bytes(n)) for n in range(3)]  # the queue's usual time
    cluster.wait(lambda: all(world.get(i).status == "done" for i in warm), 120, "warm-up")
    hogs = [upload(hog, slow + bytes(n)) for n in range(3)]
    time.sleep(1)
    anns = upload(ann, quick + b"\0ann")

    def running_a_while() -> bool:
        first = world.get(hogs[0])
        return first.status == "running" and first.started_at is not None and \
            (utcnow() - first.started_at).total_seconds() > 5

    cluster.wait(running_a_while, 60, "the hog's first grading to run 5 s")
    with cluster.db_factory() as db:
        mine = db.get(Submission, anns)
        assert mine is not None and mine.status == "queued"
        told = waiting(db, mine, utcnow(), 120)
        elapsed = (utcnow() - (world.get(hogs[0]).started_at or utcnow())).total_seconds()
    assert told["position"] == 2, told
    # The grading in front runs long (past its usual second): about as long again as it
    # has run, at most until its total limit; not "about 1 s".
    # (whole seconds, and ``elapsed`` is read a moment after the estimate)
    assert told["wait_s"] is not None and told["wait_s"] >= min(elapsed, TOTAL_S - elapsed) - 1, \
        told

    everything = [*hogs, anns]
    cluster.wait(lambda: all(world.get(i).status == "done" for i in everything), 180,
                 "every grading")
    rows = {i: world.get(i) for i in everything}
    order = sorted(everything, key=lambda i: rows[i].started_at or utcnow())
    assert order == [hogs[0], anns, hogs[1], hogs[2]], "Ann's waited for the hog's"
    for submission_id in hogs:
        row = rows[submission_id]
        assert row.attempt == 1 and row.grading_seconds is not None
        assert row.grading_seconds < TOTAL_S + 4, row.grading_seconds  # capped, not 20 s
        assert row.results is not None
        tests = GradingResult.from_record(row.results).tests
        assert [t.outcome.value for t in tests] == ["passed", "timeout"]
        assert "total grading time of 12 s" in tests[1].output
    waited = ((rows[anns].finished_at or utcnow()) - rows[anns].created_at).total_seconds()
    print(f"\nAnn was told {told['wait_s']} s ({told['message']}); her grading finished "
          f"{waited:.1f} s after her upload; the hog's took "
          f"{[round(rows[i].grading_seconds or 0, 1) for i in hogs]} s each")


def user_ids(cluster: Cluster, course_id: int, count: int) -> list[int]:
    """``count`` new students of the course (no tokens: they upload through the store)."""
    with cluster.db_factory() as db:
        users = [User(email=f"s{secrets.token_hex(4)}@example.org", password_hash="x")
                 for _ in range(count)]
        db.add_all(users)
        db.flush()
        db.add_all(Enrollment(user_id=u.id, course_id=course_id) for u in users)
        db.commit()
        return [u.id for u in users]
