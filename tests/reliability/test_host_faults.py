"""Issue 17: faults of the host are never the student's problem.

The production shape (gunicorn web, Celery worker, Redis, Postgres) under a Postgres
restarted mid-burst, a gunicorn worker killed mid-upload, a full data directory and a
full scratch space on the worker. Each test checks what the clients were told, that
every accepted upload has exactly one submission and one result, and that nothing is
left in staging."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from store.archives import staging_prefix
from store.heartbeats import alive
from store.models import Submission, utcnow
from tests.reliability.harness import Cluster, make_cluster
from tests.reliability.stack import (
    PrivatePostgres,
    Tmpfs,
    Told,
    Web,
    check_once_each,
    course_with,
    graded,
    handins,
    integrity,
    students,
    upload,
)
from tests.services import trivial_handin, write_assignment

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_a_postgres_restart_mid_burst_loses_and_duplicates_nothing(
    redis_url: str, tmp_path: Path, clusters: list[Cluster], webs: list[Web],
    private_postgres: PrivatePostgres,
) -> None:
    """Forty uploads from eight clients; Postgres stops (fast shutdown: connections are
    cut mid-transaction) and starts again 3 s later. What could not be retried in the
    upload answers 503 with Retry-After and a sentence, never a bare 500; clients resend
    with their key and get exactly one submission each."""
    cluster = make_cluster(redis_url, private_postgres.url, tmp_path, sandbox="none")
    clusters.append(cluster)
    slug, course = course_with(cluster, tmp_path)
    tokens = students(cluster, course, 40)
    archives = handins(tmp_path, 40)
    web = Web(cluster, workers=2, threads=4).start()
    webs.append(web)
    cluster.start_worker()
    restarted = threading.Event()

    def one(n: int) -> Told:
        if n == 12:  # a third of the way in
            private_postgres.stop("fast")
            threading.Timer(3.0, lambda: (private_postgres.start(), restarted.set())).start()
        return upload(web.url, tokens[n], slug, archives[n])

    with ThreadPoolExecutor(8) as pool:
        told = list(pool.map(one, range(40)))
    assert restarted.wait(60)
    graded(cluster, [t.key for t in told], 120)
    check_once_each(cluster, told)
    errors = [(code, body, retry) for t in told for code, body, retry in t.answers if code >= 500]
    assert all(code == 503 for code, _, _ in errors), errors  # never a bare 500
    for _, body, retry in errors:
        assert retry is not None and int(retry) > 0
        assert "cannot reach its database" in str(body["error"])
    print(f"\n{len(errors)} answers were 503 (resent); "
          f"{sum(1 for t in told if len(t.answers) > 1)} uploads were resent")


def test_a_gunicorn_worker_killed_mid_upload_leaves_no_duplicate_and_no_staging(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster],
    webs: list[Web],
) -> None:
    """Uploads of 4 MB stream in slowly while both gunicorn workers are SIGKILLed in turn:
    some answers never reach their client, some uploads die half-staged. Clients resend
    with their key; each gets one submission, and the respawned workers remove the
    dead ones' staging files."""
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none",
                           max_upload_bytes=str(8 << 20))
    clusters.append(cluster)
    slug, course = course_with(cluster, tmp_path)
    tokens = students(cluster, course, 24)
    big = trivial_handin(tmp_path / "handin") + bytes(4 << 20)  # gzip's zero padding
    planted = plant_staging(cluster.data_dir / "archives")
    web = Web(cluster, workers=2, threads=6).start()
    left = sorted(p.name for p in planted if p.exists())
    assert left == [planted[-1].name]  # only the young one of another host
    webs.append(web)
    cluster.start_worker()
    stop = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        while not stop.wait(0.5) and len(killed) < 4:
            pids = web.worker_pids()
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

    thread = threading.Thread(target=killer)
    thread.start()
    with ThreadPoolExecutor(12) as pool:
        told = list(pool.map(lambda n: upload(web.url, tokens[n], slug, big + bytes(n),
                                              tries=60), range(24)))  # distinct by length
    stop.set()
    thread.join()
    assert len(killed) >= 2, f"the workers were not killed mid-burst: {told[0].answers}"
    web.wait_ready()  # the respawned workers have started (and cleaned up)
    upload(web.url, tokens[0], slug, big + bytes(0), key=told[0].key)  # a late resend
    graded(cluster, [t.key for t in told], 180)
    (cluster.data_dir / "archives" / ".upload-otherhost-2-young").unlink()
    check_once_each(cluster, told)
    dropped = sum(1 for t in told for code, _, _ in t.answers if code == 0)
    print(f"\n{len(killed)} gunicorn workers killed; {dropped} answers lost and resent")


def plant_staging(store: Path) -> list[Path]:
    """What crashed uploads leave: one of a process of this host that is gone, one of
    another host last written an hour ago, and one of another host being written now
    (kept: its writer may be alive)."""
    store.mkdir(parents=True, exist_ok=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    files = [store / f"{staging_prefix().rsplit('-', 2)[0]}-{gone.pid}-crashed",
             store / ".upload-otherhost-1-old", store / ".upload-otherhost-2-young"]
    for path in files:
        path.write_bytes(b"half an upload")
    hour_ago = time.time() - 3600
    os.utime(files[1], (hour_ago, hour_ago))
    return files


def test_a_full_data_directory_says_so_and_stores_nothing_half(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster],
    webs: list[Web], tmpfs_mounts: list[Tmpfs],
) -> None:
    """The data directory is a 3 MB tmpfs; uploads of 400 kB each fill it. Those that do
    not fit are answered 507 with a sentence (not a bare 5xx); every upload answered
    202 has its archive and its row, and no staging file is left."""
    data = Tmpfs(tmp_path / "data", 3 * 1024)
    tmpfs_mounts.append(data)
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none")
    clusters.append(cluster)
    slug, course = course_with(cluster, tmp_path)
    tokens = students(cluster, course, 12)
    web = Web(cluster, workers=1, threads=4).start()
    webs.append(web)
    base = trivial_handin(tmp_path / "handin")
    told = [upload(web.url, tokens[n], slug, base + bytes((400 << 10) + n), tries=1)
            for n in range(12)]  # zero padding of distinct lengths: distinct archives
    codes = [t.answers[-1][0] for t in told]
    assert 202 in codes and 507 in codes, codes
    assert set(codes) == {202, 507}, codes
    for t in told:
        code, body, retry = t.answers[-1]
        if code == 507:
            assert body["error"] == ("The server is out of storage space, so your upload was "
                                     "not stored; try again later (course staff have been told).")
            assert retry is not None
    accepted = [t for t in told if t.accepted]
    state = integrity(cluster, [t.key for t in told])
    assert state.staged == []
    assert sum(state.submissions_per_key.values()) == len(accepted)  # the 507s made no row
    with cluster.db_factory() as db:
        hashes = db.scalars(select(Submission.archive_sha256)).all()
    store = data.path / "archives"
    assert all((store / h[:2] / h).is_file() for h in hashes)
    data.empty()  # space again: the next upload is accepted
    assert upload(web.url, tokens[0], slug, base + b"again", tries=1).accepted is not None


def test_a_worker_whose_scratch_space_is_full_hands_its_jobs_on_uncounted(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster],
    tmpfs_mounts: list[Tmpfs],
) -> None:
    """The first worker's scratch space (TMPDIR, a 2 MB tmpfs) is full: it cannot unpack
    a handin. It gives each job back without counting the attempt, reports itself
    unhealthy and stops taking work; a second, healthy worker grades everything once.
    No submission ends as an error."""
    scratch = Tmpfs(tmp_path / "full-scratch", 2 * 1024)
    tmpfs_mounts.append(scratch)
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none")
    clusters.append(cluster)
    world = cluster.world()
    folder = write_assignment(tmp_path / "fast", "fast", f"w_{secrets.token_hex(4)}.ok",
                              "return 1.0")
    assignment = world.assignment(slug="fast", folder=folder)
    sick = cluster.start_worker(TMPDIR=str(scratch.path))
    scratch.fill()
    from tasks.celery_app import make_celery
    from tasks.queueing import CeleryEnqueuer, submit

    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    base = trivial_handin(tmp_path / "handin")
    ids = [world.submission(assignment, base + bytes(n)) for n in range(6)]
    for submission_id in ids:
        assert submit(cluster.db_factory, enqueuer, submission_id)

    def reported() -> str:
        with cluster.db_factory() as db:
            return next((w.health for w in alive(db, utcnow(), 120) if w.health), "")

    health = cluster.wait(reported, 60, "the full worker to report itself unhealthy")
    assert "scratch space" in health and "full-scratch" in health
    with cluster.db_factory() as db:
        rows = db.scalars(select(Submission).where(Submission.id.in_(ids))).all()
        assert all(r.status in ("queued", "running") and r.attempt <= 1 for r in rows)
        assert not any(r.status == "error" for r in rows)
    cluster.start_worker()  # a healthy one
    cluster.wait(lambda: all(world.get(i).status == "done" for i in ids), 120,
                 "the healthy worker to grade them")
    rows = [world.get(i) for i in ids]
    assert {(r.status, r.attempt, r.score) for r in rows} == {("done", 1, 10.0)}
    assert sick.process.poll() is None and "cannot grade" in sick.text()
    assert all(r.worker is not None and f".{sick.process.pid}@" not in r.worker for r in rows)
    handed = sick.text().count("goes to another worker")
    print(f"\n{handed} jobs handed on by the full worker; its health: {health}")
