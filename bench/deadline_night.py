"""A deadline night, scaled to this machine: N students each upload the mytorch-cnn
reference handin through API v1 within seconds, against the production stack (gunicorn +
Celery + Redis + Postgres); then the queue drains.

    .venv/bin/python bench/deadline_night.py [-n 500] [--clients 16] [--concurrency 2]
    .venv/bin/python bench/deadline_night.py --faults [-n 200]    # the same, under faults

Needs DLGRADE_TEST_REDIS_URL and DLGRADE_TEST_DATABASE_URL (``scripts/services.sh``
starts both); a database of its own is created and dropped. Prints:

* the burst: uploads accepted per second and upload latency p50 / p95 / max (every
  upload must be accepted);
* the drain: time from the first upload to the last stored result, gradings per minute;
* integrity: one result per upload, each graded once (attempt 1), each 100/100;
* the wait each student was told right after uploading (``web/waiting.py``), and again 15 s
  into the drain, against the wait they had: |told - had| / had and told / had.

``--faults`` (issues 17 and 18) injects, during the burst, what a deadline night's hosts
do: gunicorn workers SIGKILLed mid-request, Postgres restarted (when
``DLGRADE_TEST_PG_CTL`` and ``DLGRADE_TEST_PG_DATA`` name it, as ``scripts/services.sh``
does), Redis frozen by SIGSTOP for ``--freeze`` s (its pid from ``DLGRADE_SERVICES_DIR``),
and, during the drain, Celery pool processes SIGKILLed mid-grade. Each client resends like
``dlgrade submit`` (the same ``Idempotency-Key`` after a dropped connection or a 5xx). It
prints the faults, what clients were told (2xx, 5xx by code, dropped connections), the
integrity (accepted, graded, lost, duplicated, staging files left) and how long each
killed grading waited for its retry.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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
from store.models import Assignment, Enrollment, Submission, TestScore, User  # noqa: E402
from store.users import create_token, create_user  # noqa: E402

STAGING_PREFIX = ".upload-"


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


# --- faults ------------------------------------------------------------------------------


@dataclass
class Told:
    """Every answer one student's upload got: HTTP status, 0 for a dropped connection."""

    key: str
    codes: list[int] = field(default_factory=list)
    submission_id: int | None = None


def resend(student: Target, archive: bytes, tries: int = 40) -> Told:
    """Upload like ``dlgrade submit``: the same Idempotency-Key again after a dropped
    connection or a 5xx, waiting a second (or the Retry-After) between tries."""
    told = Told(secrets.token_hex(16))
    boundary = secrets.token_hex(16)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"handin.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n").encode()
    body += archive + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Authorization": f"Bearer {student.token}", "Idempotency-Key": told.key,
               "Content-Type": f"multipart/form-data; boundary={boundary}"}
    for _ in range(tries):
        request = urllib.request.Request(f"{student.url}api/v1/assignments/{SLUG}/submissions",
                                         data=body, headers=headers, method="POST")
        wait = 1.0
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                told.codes.append(response.status)
                told.submission_id = int(json.load(response)["id"])
                return told
        except urllib.error.HTTPError as error:
            told.codes.append(error.code)
            if error.code < 500:
                return told
            wait = float(error.headers.get("Retry-After") or 1.0)
        except (OSError, http.client.HTTPException):  # dropped mid-answer
            told.codes.append(0)
        time.sleep(min(wait, 5.0))
    return told


@dataclass
class Faults:
    """Injects the faults and remembers when; ``kills`` are (submission, attempt, when)."""

    handles: dict[str, subprocess.Popen[str]]
    database_url: str
    freeze_s: float
    log: list[str] = field(default_factory=list)
    kills: list[tuple[int, int, float]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, what: str) -> None:
        self.log.append(f"{time.monotonic() - self.started:5.1f} s: {what}")

    def burst(self) -> None:
        """During the uploads: web workers killed, Postgres restarted, Redis frozen."""
        time.sleep(1.0)
        self.kill_web_worker()
        time.sleep(2.0)
        self.restart_postgres()
        time.sleep(2.0)
        self.kill_web_worker()
        time.sleep(1.0)
        self.freeze_redis()

    def kill_web_worker(self) -> None:
        pids = children(self.handles["web"].pid)
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            self.note(f"gunicorn worker {pids[0]} SIGKILLed")

    def restart_postgres(self) -> None:
        pg_ctl, data = os.environ.get("DLGRADE_TEST_PG_CTL"), os.environ.get("DLGRADE_TEST_PG_DATA")
        if not (pg_ctl and data):
            self.note("Postgres not restarted (DLGRADE_TEST_PG_CTL / _PG_DATA unset)")
            return
        root = os.geteuid() == 0
        begun = time.monotonic()
        subprocess.run([pg_ctl, "-D", data, "-m", "fast", "-w", "restart"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       user="postgres" if root else None)
        self.note(f"Postgres restarted (down {time.monotonic() - begun:.1f} s)")

    def freeze_redis(self) -> None:
        services = os.environ.get("DLGRADE_SERVICES_DIR")
        pidfile = Path(services or "/nonexistent") / "redis" / "redis.pid"
        if self.freeze_s <= 0 or not pidfile.is_file():
            self.note("Redis not frozen (no DLGRADE_SERVICES_DIR/redis/redis.pid)")
            return
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGSTOP)
        self.note(f"Redis frozen (SIGSTOP) for {self.freeze_s:g} s")
        try:
            time.sleep(self.freeze_s)
        finally:
            os.kill(pid, signal.SIGCONT)

    def kill_pool_processes(self, count: int, every: float) -> None:
        """During the drain: SIGKILL a pool process that holds a grading, ``count`` times."""
        engine = make_engine(self.database_url)
        try:
            factory = make_session_factory(engine)
            for _ in range(count):
                time.sleep(every)
                pool = children(self.handles["worker"].pid)
                with factory() as db:
                    rows = db.execute(select(Submission.id, Submission.worker,
                                             Submission.attempt)
                                      .where(Submission.status == "running")).all()
                target = next(((r.id, r.attempt, int(r.worker.rsplit(":", 1)[1]))
                               for r in rows if r.worker and r.worker.rsplit(":", 1)[-1]
                               .isdigit() and int(r.worker.rsplit(":", 1)[1]) in pool), None)
                if target is None:
                    continue
                os.kill(target[2], signal.SIGKILL)
                self.kills.append((target[0], target[1], time.time()))
                self.note(f"pool process {target[2]} SIGKILLed grading submission "
                          f"{target[0]} (attempt {target[1]})")
        finally:
            engine.dispose()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def faults_report(target: Target, crowd: list[Target], told: list[Told], faults: Faults,
                  data_dir: Path) -> None:
    codes = Counter(code for t in told for code in t.codes)
    accepted = [t for t in told if t.submission_id is not None]
    print("  faults:\n" + "\n".join(f"    {line}" for line in faults.log))
    server_errors = {code: n for code, n in sorted(codes.items()) if code >= 500}
    answers = dict(sorted(codes.items()))
    print(f"  clients: {len(accepted)} of {len(told)} accepted; answers {answers} "
          f"(0: a dropped connection); 5xx {sum(server_errors.values())} {server_errors}; "
          f"{sum(1 for t in told if len(t.codes) > 1)} uploads resent")
    engine = make_engine(target.database_url)
    try:
        with make_session_factory(engine)() as db:
            emails = [row for row in db.execute(
                select(User.id, User.email).where(User.email.like("student%@bench.example.edu"))
            ).all()]
            per_user = Counter(db.scalars(select(Submission.user_id).where(
                Submission.user_id.in_([u.id for u in emails]))))
            statuses = Counter(db.scalars(select(Submission.status).where(
                Submission.user_id.in_([u.id for u in emails]))))
            rows = {row.id: row for row in db.execute(select(
                Submission.id, Submission.attempt, Submission.started_at)
                .where(Submission.id.in_([k[0] for k in faults.kills]))).all()}
    finally:
        engine.dispose()
    lost = sum(1 for u in emails if per_user[u.id] == 0)
    duplicated = sum(max(0, n - 1) for n in per_user.values())
    archives = data_dir / "archives"
    staged = [p for p in archives.iterdir() if p.name.startswith(STAGING_PREFIX)] \
        if archives.is_dir() else []
    print(f"  integrity: accepted {len(accepted)}, graded {statuses.get('done', 0)} "
          f"(error {statuses.get('error', 0)}), lost {lost}, duplicated {duplicated}, "
          f"staging files left {len(staged)}")
    waits = []
    for submission_id, attempt, killed in faults.kills:
        row = rows.get(submission_id)
        if row is not None and row.attempt > attempt and row.started_at is not None:
            waits.append(row.started_at.timestamp() - killed)
    if waits:
        shown = ", ".join(f"{w:.1f}" for w in sorted(waits))
        print(f"  killed gradings: {len(waits)}; each waited {shown} s from the kill to its "
              f"retry's start (max {max(waits):.1f} s)")
    else:
        print("  killed gradings: none caught mid-grade")


def run_faults(args: argparse.Namespace, redis_url: str, postgres_url: str) -> None:
    archive = handin()
    handles: dict[str, subprocess.Popen[str]] = {}
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-") as scratch, \
            production(Path(scratch), redis_url, postgres_url, concurrency=args.concurrency,
                       handles=handles) as target:
        for _ in range(3):
            measure(target, archive)
        crowd = students(target, args.students)
        print(f"deadline night with faults: {args.students} students, {args.clients} uploads "
              f"in flight, Celery concurrency {args.concurrency}, {os.cpu_count()} cores")
        faults = Faults(handles, target.database_url, args.freeze)
        injector = threading.Thread(target=faults.burst, daemon=True)
        injector.start()
        with ThreadPoolExecutor(args.clients) as pool:
            told = list(pool.map(lambda student: resend(student, archive), crowd))
        injector.join()
        killer = threading.Thread(target=faults.kill_pool_processes, args=(3, 8.0), daemon=True)
        killer.start()
        killer.join()
        ids = [t.submission_id for t in told if t.submission_id is not None]
        drain(target, ids, timeout=600 + 10.0 * args.students)
        faults_report(target, crowd, told, faults, Path(scratch) / "production")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--students", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16, help="uploads in flight at once")
    parser.add_argument("--concurrency", type=int, default=2, help="the Celery pool's size")
    parser.add_argument("--faults", action="store_true",
                        help="inject host faults during the burst (see the module's help)")
    parser.add_argument("--freeze", type=float, default=5.0,
                        help="with --faults: seconds Redis is frozen (0: not at all)")
    args = parser.parse_args()
    redis_url = os.environ.get("DLGRADE_TEST_REDIS_URL", "")
    postgres_url = os.environ.get("DLGRADE_TEST_DATABASE_URL", "")
    if not (redis_url and postgres_url):
        raise SystemExit("set DLGRADE_TEST_REDIS_URL and DLGRADE_TEST_DATABASE_URL "
                         "(scripts/services.sh starts both)")
    if args.faults:
        run_faults(args, redis_url, postgres_url)
        return
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
