"""H1 and D10: workers that die mid-grade (docs/security.md §4.2 and checklist).

Real ``celery worker`` processes (prefork, concurrency 1) against real Redis and
Postgres; the lease is 5 s and each worker's reconciler runs every second."""

from __future__ import annotations

import secrets
import shutil
import time
from pathlib import Path

import pytest

from grader.spec import resolve_assignment
from store.leases import EXHAUSTED_MESSAGE
from tasks.celery_app import make_celery
from tasks.queueing import CeleryEnqueuer, submit
from tests.conftest import MYTORCH_SOLUTION
from tests.reliability.harness import Cluster, make_cluster, state_of
from tests.services import tar_gz, trivial_handin, write_assignment

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

MYTORCH_TESTS = len(resolve_assignment("mytorch-cnn").tests)


def slow_solution(tmp_path: Path, seconds: float) -> bytes:
    """The reference solution, with an import that sleeps in the sandbox."""
    handin = tmp_path / "slow-handin"
    shutil.copytree(MYTORCH_SOLUTION, handin, ignore=shutil.ignore_patterns("__pycache__"))
    mc = handin / "hw2" / "mc.py"
    mc.write_text(f"import time\ntime.sleep({seconds})\n" + mc.read_text(), encoding="utf-8")
    return tar_gz(handin)


def test_h1_a_worker_killed_mid_grade_is_regraded_exactly_once(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster]
) -> None:
    cluster = make_cluster(redis_url, postgres_url, tmp_path)
    clusters.append(cluster)
    world = cluster.world()
    submission_id = world.submission(world.assignment(), slow_solution(tmp_path, 4))
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    first = cluster.start_worker()
    assert submit(cluster.db_factory, enqueuer, submission_id)
    cluster.wait(lambda: state_of(cluster, submission_id)[:2] == ("running", 1), 30,
                 "the first attempt to start")
    time.sleep(1.5)  # inside the 4 s import: mid-grade
    first.kill()  # the main process and its pool child; the sandbox dies by PDEATHSIG
    assert state_of(cluster, submission_id) == ("running", 1, 0)

    cluster.start_worker()  # the old message is unacked until the visibility timeout:
    # the new worker's reconciler re-publishes the row once its lease has expired
    cluster.wait(lambda: state_of(cluster, submission_id)[0] == "done", 60, "the regrade")
    assert state_of(cluster, submission_id) == ("done", 2, MYTORCH_TESTS)
    assert world.get(submission_id).score == 100.0
    time.sleep(2)  # duplicates published meanwhile are absorbed, not graded again
    assert state_of(cluster, submission_id) == ("done", 2, MYTORCH_TESTS)


def test_d10_a_submission_that_kills_its_worker_ends_in_error_and_others_are_graded(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster]
) -> None:
    cluster = make_cluster(redis_url, postgres_url, tmp_path)
    clusters.append(cluster)
    world = cluster.world()
    tag = secrets.token_hex(3)
    crash = world.assignment(slug="crash", folder=write_assignment(
        tmp_path / "crash", "crash", f"crash_{tag}.exit", "os._exit(1)"))
    fast = world.assignment(slug="fast", folder=write_assignment(
        tmp_path / "fast", "fast", f"fast_{tag}.ok", "return 1.0"))
    handin = trivial_handin(tmp_path / "handin")
    poison = world.submission(crash, handin)
    fine = [world.submission(fast, handin + bytes(n)) for n in range(3)]
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    worker = cluster.start_worker()
    for submission_id in [poison, *fine]:
        assert submit(cluster.db_factory, enqueuer, submission_id)

    cluster.wait(lambda: all(state_of(cluster, i)[0] == "done" for i in fine), 60,
                 "the good submissions")
    cluster.wait(lambda: state_of(cluster, poison)[0] == "error", 90, "the poison one to stop")
    assert state_of(cluster, poison) == ("error", 3, 0)
    assert world.get(poison).error == EXHAUSTED_MESSAGE.format(attempts=3)
    assert worker.process.poll() is None, "the worker's main process must survive"
    assert [state_of(cluster, i) for i in fine] == [("done", 1, 1)] * 3
