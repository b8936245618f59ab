"""H8, scaled down: a deadline-night burst is graded completely, each submission once.

200 uploads inserted and published at once, two worker processes, the reconciler
re-publishing aggressively meanwhile (stale after 2 s): duplicates must be absorbed."""

from __future__ import annotations

import io
import secrets
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.archives import ArchiveStore
from store.models import Submission, TestScore
from tasks.celery_app import make_celery
from tasks.queueing import CeleryEnqueuer, submit
from tests.reliability.harness import Cluster, make_cluster
from tests.services import trivial_handin, write_assignment

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

BURST = 200


def test_h8_a_burst_is_graded_once_each(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster]
) -> None:
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none",
                           queued_stale_after="2")
    clusters.append(cluster)
    world = cluster.world()
    folder = write_assignment(tmp_path / "fast", "fast", f"h8_{secrets.token_hex(3)}.ok",
                              "return 1.0")
    assignment = world.assignment(slug="fast", folder=folder)
    sha256, size = ArchiveStore(cluster.data_dir).put(
        io.BytesIO(trivial_handin(tmp_path / "handin")), 1 << 20)
    cluster.start_worker()
    cluster.start_worker()
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))

    started = time.monotonic()
    with cluster.db_factory() as db:
        rows = [Submission(assignment_id=assignment, user_id=world.user_id,
                           archive_sha256=sha256, archive_size=size) for _ in range(BURST)]
        db.add_all(rows)
        db.commit()
        ids = [row.id for row in rows]
    assert all(submit(cluster.db_factory, enqueuer, i) for i in ids)
    published = time.monotonic() - started

    def counts() -> dict[str, int]:
        with cluster.db_factory() as db:
            rows = db.execute(select(Submission.status, func.count())
                              .group_by(Submission.status)).all()
            return {str(status): int(count) for status, count in rows}

    cluster.wait(lambda: counts().get("done") == BURST, 150, f"{BURST} gradings")
    drained = time.monotonic() - started
    time.sleep(2)  # let duplicates still in flight arrive: they must change nothing
    with cluster.db_factory() as db:
        assert db.scalar(select(func.max(Submission.attempt))) == 1
        assert db.scalar(select(func.count(TestScore.id))) == BURST
        per_row = db.execute(select(TestScore.submission_id, func.count())
                             .group_by(TestScore.submission_id)).all()
        assert {count for _, count in per_row} == {1} and len(per_row) == BURST
    assert counts() == {"done": BURST}
    print(f"\n{BURST} uploads published in {published:.1f} s, all graded after {drained:.1f} s")
