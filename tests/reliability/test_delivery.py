"""H2 and H3: duplicate deliveries and a broker that is down during an upload.

Real ``celery worker`` processes against real Redis and Postgres."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest

from tasks.celery_app import make_celery
from tasks.queueing import CeleryEnqueuer, submit
from tasks.reconcile import reconcile
from tests.reliability.harness import Cluster, make_cluster, state_of
from tests.services import PrivateRedis, trivial_handin, write_assignment

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_h2_the_same_message_delivered_twice_at_once_grades_once(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster]
) -> None:
    cluster = make_cluster(redis_url, postgres_url, tmp_path, reconcile_interval="600")
    clusters.append(cluster)
    world = cluster.world()
    folder = write_assignment(tmp_path / "slow", "slow", f"slow_{secrets.token_hex(3)}.nap",
                              "time.sleep(3)\nreturn 1.0")
    submission_id = world.submission(world.assignment(slug="slow", folder=folder),
                                     trivial_handin(tmp_path / "handin"))
    workers = [cluster.start_worker(), cluster.start_worker()]
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    barrier = threading.Barrier(2)

    def publish() -> None:
        barrier.wait()
        assert enqueuer.enqueue(submission_id, "cpu")

    threads = [threading.Thread(target=publish) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    cluster.wait(lambda: state_of(cluster, submission_id)[0] == "done", 30, "the grading")
    # The loser saw a live lease, retried when it would have expired, and found it done.
    cluster.wait(lambda: "'not-claimed'" in cluster.logs_text(), 30, "the duplicate's no-op")
    assert sum("Retry in" in w.text() for w in workers) == 1
    assert state_of(cluster, submission_id) == ("done", 1, 1)


def test_h3_an_upload_while_redis_is_down_is_graded_after_it_returns(
    postgres_url: str, tmp_path: Path, clusters: list[Cluster], private_redis: PrivateRedis
) -> None:
    broker = private_redis.start()  # a Redis of the test's own, to stop and start again
    cluster = make_cluster(broker.url, postgres_url, tmp_path, reconcile_interval="600")
    clusters.append(cluster)
    world = cluster.world()
    folder = write_assignment(tmp_path / "fast", "fast", f"h3_{secrets.token_hex(3)}.ok",
                              "return 1.0")
    assignment = world.assignment(slug="fast", folder=folder)
    cluster.start_worker()
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))

    broker.stop()
    submission_id = world.submission(assignment, trivial_handin(tmp_path / "handin"))
    started = time.monotonic()
    assert not submit(cluster.db_factory, enqueuer, submission_id)  # the upload still stands
    assert time.monotonic() - started < 2
    row = world.get(submission_id)
    assert (row.status, row.enqueued_at) == ("queued", None)

    broker.start()
    assert reconcile(cluster.db_factory, enqueuer, cluster.settings()) == 1
    cluster.wait(lambda: state_of(cluster, submission_id)[0] == "done", 60,
                 "the worker to reconnect and grade")
    assert state_of(cluster, submission_id) == ("done", 1, 1)
