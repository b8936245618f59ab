"""Issue 18: nothing stalls the service. A frozen Redis (SIGSTOP), a grading past the
soft time limit, a handin that hangs at import, a SIGKILLed pool process, scratch left by
crashes, and a reconciler that republishes only what is stale; each against real Redis,
Postgres and Celery workers (and gunicorn for the uploads)."""

from __future__ import annotations

import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from grader.results import GradingResult
from tasks.celery_app import make_celery
from tasks.queueing import CeleryEnqueuer, submit
from tasks.reconcile import reconcile
from tests.conftest import ROOT
from tests.reliability.harness import Cluster, make_cluster, state_of
from tests.reliability.stack import (
    Web,
    check_once_each,
    children,
    course_with,
    graded,
    handins,
    students,
    upload,
)
from tests.services import PrivateRedis, tar_gz, trivial_handin, write_assignment

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]


def test_a_frozen_redis_does_not_hold_up_uploads(
    postgres_url: str, tmp_path: Path, clusters: list[Cluster], webs: list[Web],
    private_redis: PrivateRedis,
) -> None:
    """Redis frozen (SIGSTOP: connections stay open, nothing answers): uploads are still
    answered 202 at once (the publish and the rate limit give up after a short socket
    timeout and leave the row to the reconciler); once Redis thaws, all are graded once.
    Before: every upload waited as long as Redis was frozen."""
    broker = private_redis.start()
    cluster = make_cluster(broker.url, postgres_url, tmp_path, sandbox="none",
                           queued_stale_after="3")
    clusters.append(cluster)
    slug, course = course_with(cluster, tmp_path)
    tokens = students(cluster, course, 13)
    archives = handins(tmp_path, 13)
    web = Web(cluster, workers=1, threads=8).start()
    webs.append(web)
    cluster.start_worker()
    first = upload(web.url, tokens[12], slug, archives[12])
    graded(cluster, [first.key], 60)
    assert broker.process is not None
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:
        latencies: list[float] = []

        def timed(n: int) -> object:
            started = time.monotonic()
            told = upload(web.url, tokens[n], slug, archives[n], tries=1, timeout=30)
            latencies.append(time.monotonic() - started)
            return told

        with ThreadPoolExecutor(4) as pool:
            told = list(pool.map(timed, range(12)))
        frozen_for = 5.0
        time.sleep(frozen_for)
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
    assert all(t.accepted is not None for t in told)  # type: ignore[attr-defined]
    print(f"\nupload latency with Redis frozen: median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s")
    assert max(latencies) < 5 and statistics.median(latencies) < 2, latencies
    graded(cluster, [t.key for t in told], 120)  # type: ignore[attr-defined]
    check_once_each(cluster, told)  # type: ignore[arg-type]


def test_a_grading_past_the_soft_time_limit_ends_with_its_partial_results(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster],
) -> None:
    """A course check that hangs on the trusted side (no sandbox call bounds it): the
    soft time limit (60 s of a 90 s task limit) ends the grading as a timeout with the
    results so far, attempt 1, instead of the hard kill, three times over, and "Grading
    failed 3 times". The handin that hangs at import in the same run waits its call
    timeout once, not once per test."""
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none",
                           task_time_limit="90", visibility_timeout="200")
    clusters.append(cluster)
    world = cluster.world()
    tag = secrets.token_hex(3)
    hangs = tmp_path / "hangs"
    write_assignment(hangs, "hangs", f"hang_{tag}.first", "return 1.0")
    spec = (hangs / "spec.toml").read_text()
    (hangs / "spec.toml").write_text(spec.replace("timeout_s = 120", "timeout_s = 10") + (
        '\n[[tests]]\nname = "Hangs"\ncheck = "hang_TAG.sleep"\npoints = 10\ntimeout_s = 10\n'
        '\n[[tests]]\nname = "After"\ncheck = "hang_TAG.first"\npoints = 10\ntimeout_s = 10\n'
    ).replace("TAG", tag))
    with (hangs / "checks.py").open("a") as checks:
        checks.write(f'\n\n@check("hang_{tag}.sleep")\ndef hang(ctx):\n    time.sleep(300)\n')
    stuck = tmp_path / "stuck"
    write_assignment(stuck, "stuck", f"stuck_{tag}.import",
                     'ctx.session.import_module("answer")\nreturn 1.0')
    stuck_spec = (stuck / "spec.toml").read_text().replace("timeout_s = 120", "timeout_s = 10")
    extra = "".join(f'\n[[tests]]\nname = "Again {n}"\ncheck = "stuck_{tag}.import"\n'
                    f"points = 1\ntimeout_s = 10\n" for n in (2, 3))
    (stuck / "spec.toml").write_text(stuck_spec + extra + "\n[sandbox]\ncall_timeout_s = 5\n")
    handin = tmp_path / "handin"
    handin.mkdir()
    (handin / "answer.py").write_text("import time\ntime.sleep(600)\n")
    archive = tar_gz(handin)
    slow = world.submission(world.assignment(slug="hangs", folder=hangs), archive)
    hung = world.submission(world.assignment(slug="stuck", folder=stuck), archive + b"\0")
    cluster.start_worker()
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    assert submit(cluster.db_factory, enqueuer, slow) and submit(cluster.db_factory, enqueuer, hung)
    cluster.wait(lambda: state_of(cluster, slow)[0] == "done", 150, "the soft time limit")
    row = world.get(slow)
    assert (row.status, row.attempt, row.score) == ("done", 1, 10.0)
    assert row.results is not None
    tests = GradingResult.from_record(row.results).tests
    assert [test.outcome.value for test in tests] == ["passed", "timeout", "timeout"]
    outputs = [test.output for test in tests]
    assert outputs[1].startswith("Time limit: the grading of this submission ran out of time")
    assert outputs[2].startswith("Not run:")
    assert row.grading_seconds is not None and 55 < row.grading_seconds < 85
    cluster.wait(lambda: state_of(cluster, hung)[0] == "done", 60, "the hung import")
    row = world.get(hung)
    assert row.attempt == 1 and row.grading_seconds is not None
    assert row.results is not None
    outputs = [test.output for test in GradingResult.from_record(row.results).tests]
    assert all("did not finish" in text for text in outputs)
    assert sum("so it was not tried again" in text for text in outputs) == 2
    assert row.grading_seconds < 12, row.grading_seconds  # one 5 s wait, not three


def test_a_killed_pool_process_releases_its_lease_at_once(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster],
) -> None:
    """SIGKILL of the pool process grading (the OOM killer's way): its worker knows the
    child is dead, so the redelivered job is graded again at once (attempt 2) instead
    of waiting for the 60 s lease to run out."""
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none",
                           lease_seconds="60", reconcile_interval="600")
    clusters.append(cluster)
    world = cluster.world()
    folder = write_assignment(tmp_path / "nap", "nap", f"nap_{secrets.token_hex(3)}.nap",
                              "time.sleep(4)\nreturn 1.0")
    submission_id = world.submission(world.assignment(slug="nap", folder=folder),
                                     trivial_handin(tmp_path / "handin"))
    worker = cluster.start_worker()
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    assert submit(cluster.db_factory, enqueuer, submission_id)
    cluster.wait(lambda: state_of(cluster, submission_id)[:2] == ("running", 1), 60,
                 "the first attempt")
    [child] = children(worker.process.pid)
    time.sleep(1)
    os.kill(child, signal.SIGKILL)
    killed_at = world.get(submission_id).lease_until
    assert killed_at is not None
    cluster.wait(lambda: state_of(cluster, submission_id) == ("done", 2, 1), 60,
                 "the regrade")
    row = world.get(submission_id)
    assert row.started_at is not None
    waited = (row.started_at - (killed_at - timedelta(seconds=60))).total_seconds()
    print(f"\nthe killed job was claimed again {waited:.1f} s after its last lease renewal "
          "(the lease was 60 s)")
    assert waited < 30
    assert "died holding attempt 1" in cluster.logs_text()


def test_scratch_left_by_crashes_is_collected_and_live_scratch_is_not(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster],
) -> None:
    """A worker killed mid-grade leaves its pool process's scratch (the extracted handin
    below it); old per-grading folders and a two-day-old agent copy lie around too. The
    dry run lists them and removes nothing; the next worker removes them at start, and
    leaves what a live grading may still use. A worker stopped cleanly leaves nothing."""
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none")
    clusters.append(cluster)
    world = cluster.world()
    folder = write_assignment(tmp_path / "nap", "nap", f"sc_{secrets.token_hex(3)}.nap",
                              "time.sleep(8)\nreturn 1.0")
    assignment = world.assignment(slug="nap", folder=folder)
    crashed = cluster.start_worker()
    scratch = tmp_path / "scratch-0"
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    first = world.submission(assignment, trivial_handin(tmp_path / "handin"))
    assert submit(cluster.db_factory, enqueuer, first)
    cluster.wait(lambda: state_of(cluster, first)[0] == "running", 60, "the grading")
    cluster.wait(lambda: list(scratch.glob("dlgrade-worker-*/dlgrade-handin-*")), 30,
                 "its extracted handin")
    crashed.kill()
    [dead] = scratch.glob("dlgrade-worker-*")
    # The pool child dies with its group, but is reaped (and its pid gone) a moment later
    cluster.wait(lambda: pid_gone(int(dead.name.rsplit("-", 2)[-2])), 30,
                 "the killed pool process to be gone")
    old, day = time.time() - 7200, time.time() - 2 * 86400
    planted = {name: scratch / name for name in (
        "dlgrade-handin-old", "dlgrade-root-old", "dlgrade-agent-old", "dlgrade-handin-young",
        "dlgrade-agent-recent", "unrelated-folder")}
    for name, path in planted.items():
        (path / "inside").mkdir(parents=True)
        (path / "inside" / "file").write_bytes(b"x" * 1000)
        when = day if name == "dlgrade-agent-old" else old
        if name != "dlgrade-handin-young":
            os.utime(path, (when, when))
    garbage = {dead, planted["dlgrade-handin-old"], planted["dlgrade-root-old"],
               planted["dlgrade-agent-old"]}
    env = {**cluster.env(), "TMPDIR": str(scratch)}
    dry = subprocess.run([sys.executable, "-m", "dlgrade.cli", "scratch", "gc", "--dry-run"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert all(str(path) in dry.stdout for path in garbage), dry.stdout
    assert "Would remove 4 folders" in dry.stdout and all(p.exists() for p in garbage)

    second = cluster.start_worker(TMPDIR=str(scratch))
    cluster.wait(lambda: not any(p.exists() for p in garbage), 30, "the scratch collection")
    for name in ("dlgrade-handin-young", "dlgrade-agent-recent", "unrelated-folder"):
        assert planted[name].exists(), name
    assert "left by a grading that crashed" in second.text()
    cluster.wait(lambda: state_of(cluster, first)[0] == "done", 90, "the regrade")
    mine = list(scratch.glob("dlgrade-worker-*"))
    assert mine  # the live pool process's own folder
    second.process.send_signal(signal.SIGTERM)  # a clean stop
    second.process.wait(60)
    assert list(scratch.glob("dlgrade-worker-*")) == [], "a clean stop left scratch"


def test_the_reconciler_republishes_only_what_the_broker_lost(
    redis_url: str, postgres_url: str, tmp_path: Path, clusters: list[Cluster],
) -> None:
    """Twenty rows queued and published, no worker yet: passes of the reconciler find
    their messages waiting and publish nothing (it used to republish the whole backlog
    every stale period of a long drain). After Redis loses its messages, one pass
    publishes all twenty; a worker then grades each once."""
    cluster = make_cluster(redis_url, postgres_url, tmp_path, sandbox="none",
                           queued_stale_after="0.1")
    clusters.append(cluster)
    world = cluster.world()
    folder = write_assignment(tmp_path / "fast", "fast", f"rc_{secrets.token_hex(3)}.ok",
                              "return 1.0")
    assignment = world.assignment(slug="fast", folder=folder)
    base = trivial_handin(tmp_path / "handin")
    ids = [world.submission(assignment, base + bytes(n)) for n in range(20)]
    enqueuer = CeleryEnqueuer(make_celery(cluster.settings()))
    assert all(submit(cluster.db_factory, enqueuer, i) for i in ids)
    client = redis.Redis.from_url(redis_url)
    assert client.llen("cpu") == 20
    for _ in range(3):
        time.sleep(0.2)  # every row is "stale" by time alone
        assert reconcile(cluster.db_factory, enqueuer, cluster.settings()) == 0
    assert client.llen("cpu") == 20
    client.delete("cpu")  # Redis restarted without its queue
    assert reconcile(cluster.db_factory, enqueuer, cluster.settings()) == 20
    assert client.llen("cpu") == 20
    cluster.start_worker()
    cluster.wait(lambda: all(state_of(cluster, i) == ("done", 1, 1) for i in ids), 120,
                 "the gradings")


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
