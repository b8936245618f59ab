"""The rest of the production shape for the reliability tests: the web under gunicorn
(``dlgrade web``), a Postgres of the test's own that it can restart, small full
filesystems (tmpfs), students with API tokens, and an API client that resends like
``dlgrade submit`` (same Idempotency-Key, after a dropped connection or a 5xx) and
records every answer it was given."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from store.archives import STAGING_PREFIX
from store.models import Enrollment, Submission, TestScore, User
from store.users import create_token
from tests.conftest import ROOT, require
from tests.reliability.harness import Cluster
from tests.services import (
    free_port,
    postgres_reachable,
    trivial_handin,
    wait_for,
    write_assignment,
)

DLGRADE = str(Path(sys.executable).parent / "dlgrade")


# --- the web under gunicorn ---------------------------------------------------------------


@dataclass
class Web:
    """``dlgrade web`` (gunicorn, gthread workers) on a free port, sharing the cluster's
    settings (broker, database, data dir)."""

    cluster: Cluster
    workers: int = 2
    threads: int = 4
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **extra: str) -> Web:
        self.log = self.cluster.logs / f"web-{self.port}.log"
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [DLGRADE, "web", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers), "--threads", str(self.threads)],
                cwd=ROOT, env=self.cluster.env(**extra), stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"dlgrade web exited:\n{self.text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/openapi.json", timeout=5):
                    return len(self.worker_pids()) >= self.workers
            except OSError:
                return False

        wait_for(answers, timeout, 0.3, "gunicorn to answer")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return children(self.process.pid)

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-8000:] if self.log else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == str(pid) and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


@pytest.fixture
def webs() -> Iterator[list[Web]]:
    made: list[Web] = []
    yield made
    for web in made:
        web.stop()


# --- a Postgres of the test's own ---------------------------------------------------------


def find_pg_bin() -> Path | None:
    given = os.environ.get("DLGRADE_TEST_PG_CTL")
    if given:
        return Path(given).parent
    found = shutil.which("initdb") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
    return Path(found).parent if found else None


class PrivatePostgres:
    """initdb + pg_ctl on a port of its own (as the postgres user when run as root), so a
    test can restart it under the service."""

    def __init__(self) -> None:
        self.bin = find_pg_bin()
        require(self.bin is not None, "Postgres's initdb and pg_ctl (postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="dlgrade-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, check: bool = True) -> None:
        user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:  # initdb refuses root
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        subprocess.run(argv, check=check, cwd=self.root, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, user=user.pw_uid if user else None,
                       group=user.pw_gid if user else None)

    def start(self) -> PrivatePostgres:
        assert self.bin is not None
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                      "-U", "postgres")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                  str(self.root / "server.log"), "-o", options, "start")
        wait_for(lambda: postgres_reachable(self.url), 30, 0.2, "the private Postgres")
        return self

    def stop(self, mode: str = "fast") -> None:
        assert self.bin is not None
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop",
                  check=False)

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        yield server.start()
    finally:
        server.remove()


# --- small full filesystems ---------------------------------------------------------------


class Tmpfs:
    """A tmpfs of ``size_kb`` mounted at ``path`` (root only), unmounted at the end."""

    def __init__(self, path: Path, size_kb: int) -> None:
        require(os.geteuid() == 0 and shutil.which("mount") is not None,
                "root, to mount a small tmpfs")
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=755",
                                 "tmpfs", str(path)], capture_output=True, text=True)
        require(result.returncode == 0, f"a tmpfs mount ({result.stderr.strip()})")

    def fill(self, leave_kb: int = 0) -> None:
        """Fill it up, leaving about ``leave_kb`` free."""
        free = shutil.disk_usage(self.path).free - leave_kb * 1024
        if free > 0:
            with (self.path / ".filler").open("wb") as out:
                with contextlib.suppress(OSError):
                    out.write(b"\0" * free)

    def empty(self) -> None:
        (self.path / ".filler").unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=False)


@pytest.fixture
def tmpfs_mounts() -> Iterator[list[Tmpfs]]:
    made: list[Tmpfs] = []
    yield made
    for mount in made:
        mount.unmount()


# --- students and what they are told -----------------------------------------------------


def students(cluster: Cluster, course_id: int, count: int) -> list[str]:
    """``count`` students enrolled in the course, each with an API token."""
    tokens = []
    with cluster.db_factory() as db:
        for _ in range(count):
            user = User(email=f"s{secrets.token_hex(4)}@example.org", password_hash="x")
            db.add(user)
            db.flush()
            db.add(Enrollment(user_id=user.id, course_id=course_id, role="student"))
            tokens.append(create_token(db, user, name="reliability"))
        db.commit()
    return tokens


@dataclass
class Told:
    """Every answer one upload got, in order: (HTTP status or 0 for a dropped
    connection, the JSON body, the Retry-After header)."""

    key: str
    answers: list[tuple[int, dict[str, object], str | None]] = field(default_factory=list)

    @property
    def accepted(self) -> dict[str, object] | None:
        return next((body for code, body, _ in self.answers if code == 202), None)

    @property
    def server_errors(self) -> list[int]:
        return [code for code, _, _ in self.answers if code >= 500]


def upload(url: str, token: str, slug: str, archive: bytes, *, key: str | None = None,
           tries: int = 30, delay: float = 0.5, timeout: float = 30) -> Told:
    """POST ``archive`` like ``dlgrade submit``: resend with the same key after a dropped
    connection or a 5xx, until a 2xx or 4xx or ``tries`` runs out."""
    told = Told(key or secrets.token_hex(16))
    boundary = secrets.token_hex(8)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"handin.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n").encode()
    body += archive + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": told.key,
               "Content-Type": f"multipart/form-data; boundary={boundary}"}
    for _ in range(tries):
        request = urllib.request.Request(f"{url}/api/v1/assignments/{slug}/submissions",
                                         data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                told.answers.append((answer.status, json.load(answer), None))
                return told
        except urllib.error.HTTPError as error:
            try:
                parsed = json.loads(error.read() or b"{}")
            except ValueError:
                parsed = {"raw": True}
            told.answers.append((error.code, parsed, error.headers.get("Retry-After")))
            if error.code < 500:
                return told
        except (OSError, http.client.HTTPException) as error:  # dropped mid-answer
            told.answers.append((0, {"error": str(error)}, None))
        time.sleep(delay)
    return told


@dataclass(frozen=True)
class Integrity:
    """What the database holds for a set of uploads."""

    submissions_per_key: dict[str, int]
    results_per_submission: dict[int, int]
    statuses: dict[int, str]
    staged: list[str]


def integrity(cluster: Cluster, keys: list[str]) -> Integrity:
    with cluster.db_factory() as db:
        rows = db.execute(select(Submission.id, Submission.idempotency_key, Submission.status)
                          .where(Submission.idempotency_key.in_(keys))).all()
        tests = db.execute(select(TestScore.submission_id)).scalars().all()
    per_key = {key: 0 for key in keys}
    for row in rows:
        per_key[str(row.idempotency_key)] += 1
    results = {int(row.id): 0 for row in rows}
    for submission_id in tests:
        if submission_id in results:
            results[submission_id] += 1
    archives = cluster.data_dir / "archives"
    staged = sorted(p.name for p in archives.iterdir() if p.name.startswith(STAGING_PREFIX)) \
        if archives.is_dir() else []
    return Integrity(per_key, results, {int(r.id): str(r.status) for r in rows}, staged)


# --- a course, handins, and what must hold at the end ----------------------------------


def course_with(cluster: Cluster, tmp_path: Path, body: str = "return 1.0") -> tuple[str, int]:
    """An assignment "fast" (one test, ``body``) in a fresh course: (slug, course id)."""
    world = cluster.world()
    folder = write_assignment(tmp_path / "fast", "fast", f"f_{secrets.token_hex(4)}.ok", body)
    world.assignment(slug="fast", folder=folder)
    return "fast", world.course_id


def handins(tmp_path: Path, count: int) -> list[bytes]:
    base = trivial_handin(tmp_path / "handin")
    return [base + bytes(n) for n in range(count)]  # different bytes, still a .tar.gz


def graded(cluster: Cluster, keys: list[str], timeout: float) -> None:
    def done() -> bool:
        state = integrity(cluster, keys)
        return bool(state.statuses) and set(state.statuses.values()) == {"done"} \
            and len(state.statuses) == len(keys)

    cluster.wait(done, timeout, f"{len(keys)} uploads graded")


def check_once_each(cluster: Cluster, told: list[Told]) -> None:
    """Every upload accepted once, one submission per key, one result each, no staging."""
    assert all(t.accepted is not None for t in told), [t.answers for t in told
                                                        if t.accepted is None]
    state = integrity(cluster, [t.key for t in told])
    assert set(state.submissions_per_key.values()) == {1}
    assert set(state.results_per_submission.values()) == {1}
    assert {int(t.accepted["id"]) for t in told if t.accepted} == set(state.statuses)  # type: ignore[call-overload]
    assert state.staged == []
