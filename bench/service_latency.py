"""Latency of the service: from an API upload of the mytorch-cnn reference handin to its
stored result, over N sequential uploads, and the service's own share of it.

    .venv/bin/python bench/service_latency.py [-n 10] [--mode embedded|production|both]

``embedded`` spawns ``dlgrade serve`` (SQLite, built-in worker). ``production`` spawns
``dlgrade web`` (gunicorn) and ``dlgrade worker`` (Celery) on the Redis and Postgres named
by ``DLGRADE_TEST_REDIS_URL`` / ``DLGRADE_TEST_DATABASE_URL`` (a database of its own is
created and dropped); without both it is left out. ``scripts/services.sh`` starts both.

Per mode it prints p50 / p95 of: total (POST sent -> the row's ``finished_at``), grading
(the row's ``grading_seconds``) and service overhead (total minus grading: upload
checks, storage, queueing, claiming and storing the result). One warm-up upload first.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, make_url, select, text

from store.db import make_engine, make_session_factory
from store.demo import seed_demo
from store.migrate import upgrade
from store.models import Submission
from store.users import create_token, find_user

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "assignments/mytorch-cnn/solution"
DLGRADE = [str(Path(sys.executable).parent / "dlgrade")]
SLUG = "mytorch-cnn"


@dataclass
class Sample:
    total: float
    grading: float

    @property
    def overhead(self) -> float:
        return self.total - self.grading


@dataclass
class Target:
    url: str
    token: str
    database_url: str


def handin() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for child in sorted(SOLUTION.iterdir()):
            tar.add(child, arcname=child.name,
                    filter=lambda info: None if "__pycache__" in info.name else info)
    return buffer.getvalue()


def post_archive(target: Target, archive: bytes) -> int:
    boundary = secrets.token_hex(16)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"handin.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n").encode()
    body += archive + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{target.url}api/v1/assignments/{SLUG}/submissions", data=body, method="POST",
        headers={"Authorization": f"Bearer {target.token}",
                 "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return int(json.load(response)["id"])


def status(target: Target, submission_id: int) -> str:
    request = urllib.request.Request(f"{target.url}api/v1/submissions/{submission_id}",
                                     headers={"Authorization": f"Bearer {target.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["status"])


def measure(target: Target, archive: bytes, timeout: float = 300) -> Sample:
    """One upload; polls the API like a client, reads the timings from the row."""
    sent = datetime.now(UTC)
    submission_id = post_archive(target, archive)
    deadline = time.monotonic() + timeout
    while (state := status(target, submission_id)) not in ("done", "error"):
        if time.monotonic() > deadline:
            raise SystemExit(f"submission {submission_id} was not graded in {timeout:g} s")
        time.sleep(0.05)
    engine = make_engine(target.database_url)
    try:
        with make_session_factory(engine)() as db:
            row = db.scalars(select(Submission).where(Submission.id == submission_id)).one()
            finished, grading, score = row.finished_at, row.grading_seconds, row.score
    finally:
        engine.dispose()
    if state != "done" or score != 100 or finished is None or grading is None:
        raise SystemExit(f"submission {submission_id} ended {state} with score {score}")
    return Sample((finished - sent).total_seconds(), grading)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of them at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def report(title: str, samples: list[Sample]) -> None:
    print(f"{title}: {len(samples)} uploads of the {SLUG} reference handin")
    for label, values in (("upload -> stored result", [s.total for s in samples]),
                          ("grading (grading_seconds)", [s.grading for s in samples]),
                          ("service overhead", [s.overhead for s in samples])):
        print(f"  {label:<26} p50 {percentile(values, 0.5):7.3f} s   "
              f"p95 {percentile(values, 0.95):7.3f} s")


def run(target: Target, runs: int) -> list[Sample]:
    archive = handin()
    measure(target, archive)  # warm-up: first sandbox start, imports, caches
    return [measure(target, archive) for _ in range(runs)]


# --- embedded -----------------------------------------------------------------------------


@contextmanager
def embedded(workdir: Path) -> Iterator[Target]:
    data_dir = workdir / "embedded"
    log = (workdir / "serve.log").open("w")
    process = subprocess.Popen([*DLGRADE, "serve", "--port", "0", "--data-dir", str(data_dir)],
                               stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        url, account = "", ""
        assert process.stdout is not None
        for line in process.stdout:
            if "serving on" in line:
                url = line.split("serving on", 1)[1].strip()
            if line.strip().startswith("student:"):
                account = line.split()[1]
            if line.startswith("Press Ctrl-C"):
                break
        if not url or not account:
            raise SystemExit(f"dlgrade serve did not start; see {workdir / 'serve.log'}")
        database_url = f"sqlite:///{data_dir / 'dlgrade.db'}"
        yield Target(url, make_token(database_url, account), database_url)
    finally:
        stop(process)
        log.close()


def make_token(database_url: str, email: str) -> str:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as db:
            user = find_user(db, email)
            assert user is not None, email
            raw = create_token(db, user, name="bench")
            db.commit()
            return raw
    finally:
        engine.dispose()


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- production ---------------------------------------------------------------------------


@contextmanager
def production(workdir: Path, redis_url: str, postgres_url: str, *, concurrency: int = 1,
               web_workers: int = 2, handles: dict[str, subprocess.Popen[str]] | None = None,
               env_extra: dict[str, str] | None = None) -> Iterator[Target]:
    """The production shape on a fresh database; ``handles`` (when given) receives the
    ``web`` (gunicorn master) and ``worker`` (Celery main) processes, for fault injection."""
    with fresh_database(postgres_url) as database_url:
        data_dir = workdir / "production"
        upgrade(database_url)
        engine = make_engine(database_url)
        with make_session_factory(engine)() as db:
            accounts = seed_demo(db, data_dir)
        engine.dispose()
        port = free_port()
        env = {**os.environ, "DLGRADE_DATABASE_URL": database_url, "DLGRADE_BROKER_URL": redis_url,
               "DLGRADE_SECRET_KEY": secrets.token_hex(32), "DLGRADE_DATA_DIR": str(data_dir),
               **(env_extra or {})}
        logs = [(workdir / name).open("w") for name in ("web.log", "worker.log")]
        web = subprocess.Popen([*DLGRADE, "web", "--host", "127.0.0.1", "--port", str(port),
                                "--workers", str(web_workers)], env=env, stdout=logs[0],
                               stderr=logs[0], text=True)
        worker = subprocess.Popen([*DLGRADE, "worker", "--queues", "cpu", "--concurrency",
                                   str(concurrency)], env=env, stdout=logs[1], stderr=logs[1],
                                  text=True)
        if handles is not None:
            handles.update(web=web, worker=worker)
        try:
            wait_for_port(port, web)
            yield Target(f"http://127.0.0.1:{port}/",
                         make_token(database_url, accounts.student_email), database_url)
        finally:
            for process in (web, worker):
                stop(process)
            for log in logs:
                log.close()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    name = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("dlgrade web exited; see web.log")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"dlgrade web did not listen on {port} within {timeout:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    parser.add_argument("--mode", choices=("embedded", "production", "both"), default="both")
    args = parser.parse_args()
    redis_url = os.environ.get("DLGRADE_TEST_REDIS_URL", "")
    postgres_url = os.environ.get("DLGRADE_TEST_DATABASE_URL", "")
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-") as scratch:
        workdir = Path(scratch)
        if args.mode in ("embedded", "both"):
            with embedded(workdir) as target:
                report("embedded (dlgrade serve, SQLite)", run(target, args.runs))
        if args.mode in ("production", "both"):
            if not (redis_url and postgres_url):
                print("production: left out (set DLGRADE_TEST_REDIS_URL and "
                      "DLGRADE_TEST_DATABASE_URL, e.g. via scripts/services.sh)")
                return
            with production(workdir, redis_url, postgres_url) as target:
                report("production (gunicorn + Celery, Redis + Postgres)", run(target, args.runs))


if __name__ == "__main__":
    main()
