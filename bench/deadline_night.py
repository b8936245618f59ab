"""A deadline night, scaled to this machine: N students each upload the mytorch-cnn
reference handin through API v1 within seconds, against the production stack (gunicorn +
Celery + Redis + Postgres); then the queue drains.

    .venv/bin/python bench/deadline_night.py [-n 500] [--clients 16] [--concurrency 2]

Needs DLGRADE_TEST_REDIS_URL and DLGRADE_TEST_DATABASE_URL (``scripts/services.sh``
starts both); a database of its own is created and dropped. Prints:

* the burst: uploads accepted per second and upload latency p50 / p95 / max (every
  upload must be accepted);
* the drain: time from the first upload to the last stored result, gradings per minute;
* integrity: one result per upload, each graded once (attempt 1), each 100/100;
* the wait each student was told right after uploading (``web/waiting.py``), and again 15 s
  into the drain, against the wait they had: |told - had| / had and told / had.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service_latency import (  # noqa: E402 - the sibling script, run from any directory
    SLUG,
    Target,
    handin,
    measure,
    percentile,
    post_archive,
    production,
)

from store.db import make_engine, make_session_factory  # noqa: E402
from store.models import Assignment, Enrollment, Submission, TestScore  # noqa: E402
from store.users import create_token, create_user  # noqa: E402


@dataclass
class Upload:
    submission_id: int
    latency: float  # POST sent -> 202 received
    told_at: datetime  # when the student read the wait
    told_s: int | None  # the wait they were told


def students(target: Target, count: int) -> list[Target]:
    """``count`` students enrolled in the demo course, each with an API token."""
    engine = make_engine(target.database_url)
    try:
        with make_session_factory(engine)() as db:
            course_id = db.scalars(select(Assignment.course_id)
                                   .where(Assignment.slug == SLUG)).one()
            tokens = []
            for i in range(count):
                user = create_user(db, f"student{i:04d}@bench.example.edu",
                                   secrets.token_hex(16))
                db.add(Enrollment(user_id=user.id, course_id=course_id, role="student"))
                tokens.append(create_token(db, user, name="bench"))
            db.commit()
    finally:
        engine.dispose()
    return [Target(target.url, token, target.database_url) for token in tokens]


def upload(student: Target, archive: bytes) -> Upload:
    sent = time.monotonic()
    submission_id = post_archive(student, archive)
    latency = time.monotonic() - sent
    told_at, told = ask_wait(student, submission_id)
    return Upload(submission_id, latency, told_at, told)


def ask_wait(student: Target, submission_id: int) -> tuple[datetime, int | None]:
    """What the API tells the student now: (when, wait_s; None once it is not queued)."""
    request = urllib.request.Request(f"{student.url}api/v1/submissions/{submission_id}",
                                     headers={"Authorization": f"Bearer {student.token}"})
    told_at = datetime.now(UTC)
    with urllib.request.urlopen(request, timeout=60) as response:
        return told_at, json.load(response).get("wait_s")


def drain(target: Target, ids: list[int], timeout: float) -> float:
    """Seconds until every submission in ``ids`` is done or failed."""
    engine = make_engine(target.database_url)
    started = time.monotonic()
    try:
        factory = make_session_factory(engine)
        while time.monotonic() - started < timeout:
            with factory() as db:
                pending = db.scalar(select(func.count(Submission.id)).where(
                    Submission.id.in_(ids), Submission.status.in_(("queued", "running"))))
            if not pending:
                return time.monotonic() - started
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise SystemExit(f"the queue did not drain within {timeout:g} s")


def integrity(target: Target, uploads: list[Upload], later: list[Upload]) -> None:
    ids = [u.submission_id for u in uploads]
    engine = make_engine(target.database_url)
    try:
        with make_session_factory(engine)() as db:
            rows = {row.id: row for row in db.scalars(
                select(Submission).where(Submission.id.in_(ids)))}
            per_test = Counter(db.scalars(select(TestScore.submission_id)
                                          .where(TestScore.submission_id.in_(ids))))
    finally:
        engine.dispose()
    statuses = Counter(row.status for row in rows.values())
    attempts = Counter(row.attempt for row in rows.values())
    scores = Counter(row.score for row in rows.values())
    print(f"  integrity: {len(rows)} rows for {len(ids)} uploads; status {dict(statuses)}; "
          f"attempts {dict(sorted(attempts.items()))}; scores {dict(scores)}; "
          f"test rows per result {sorted(set(per_test.values()))}")
    for when, told in (("at upload", uploads), ("15 s into the drain", later)):
        accuracy(when, told, rows)


def accuracy(when: str, told: list[Upload], rows: dict[int, Submission]) -> None:
    errors, ratios = [], []
    for upload_ in told:
        row = rows[upload_.submission_id]
        if row.finished_at is not None and upload_.told_s is not None:
            actual = max((row.finished_at - upload_.told_at).total_seconds(), 1.0)
            errors.append(abs(upload_.told_s - actual) / actual)
            ratios.append(upload_.told_s / actual)
    if not errors:
        print(f"  wait told {when}: no student was told a wait")
        return
    print(f"  wait told {when} vs had: |error| / actual p50 {percentile(errors, 0.5):.2f}, "
          f"p90 {percentile(errors, 0.9):.2f}; told / had p10 {percentile(ratios, 0.1):.2f}, "
          f"p50 {percentile(ratios, 0.5):.2f}, p90 {percentile(ratios, 0.9):.2f} "
          f"({len(errors)} students)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--students", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16, help="uploads in flight at once")
    parser.add_argument("--concurrency", type=int, default=2, help="the Celery pool's size")
    args = parser.parse_args()
    redis_url = os.environ.get("DLGRADE_TEST_REDIS_URL", "")
    postgres_url = os.environ.get("DLGRADE_TEST_DATABASE_URL", "")
    if not (redis_url and postgres_url):
        raise SystemExit("set DLGRADE_TEST_REDIS_URL and DLGRADE_TEST_DATABASE_URL "
                         "(scripts/services.sh starts both)")
    archive = handin()
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-") as scratch, \
            production(Path(scratch), redis_url, postgres_url,
                       concurrency=args.concurrency) as target:
        for _ in range(5):  # warm-up, and recent grading times for the wait estimate
            measure(target, archive)
        crowd = students(target, args.students)
        print(f"deadline night: {args.students} students, {args.clients} uploads in flight, "
              f"Celery concurrency {args.concurrency}, {os.cpu_count()} cores")
        started = time.monotonic()
        with ThreadPoolExecutor(args.clients) as pool:
            uploads = list(pool.map(lambda student: upload(student, archive), crowd))
        burst = time.monotonic() - started
        latencies = [u.latency for u in uploads]
        print(f"  burst: {len(uploads)} uploads accepted in {burst:.1f} s "
              f"({len(uploads) / burst:.1f}/s); upload latency p50 "
              f"{percentile(latencies, 0.5):.3f} s, p95 {percentile(latencies, 0.95):.3f} s, "
              f"max {max(latencies):.3f} s")
        time.sleep(15)  # students reload their page once the rush has a pace

        def ask_again(pair: tuple[Target, Upload]) -> Upload:
            told_at, told = ask_wait(pair[0], pair[1].submission_id)
            return Upload(pair[1].submission_id, 0.0, told_at, told)

        with ThreadPoolExecutor(args.clients) as pool:
            later = [u for u in pool.map(ask_again, zip(crowd, uploads, strict=True))
                     if u.told_s is not None]
        drained = drain(target, [u.submission_id for u in uploads],
                        timeout=60 + 10.0 * args.students)
        total = time.monotonic() - started
        print(f"  drain: last result {total:.1f} s after the first upload "
              f"({len(uploads) / total * 60:.0f} gradings/min; {drained:.1f} s after the burst)")
        integrity(target, uploads, later)
        said = (Path(scratch) / "worker.log").read_text(errors="replace").splitlines()
        print("  worker: " + next((line.strip() for line in said if "Sandbox:" in line),
                                  "(did not say its sandbox)"))


if __name__ == "__main__":
    main()
