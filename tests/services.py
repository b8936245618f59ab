"""Real Redis and Postgres for the tests marked ``redis`` / ``postgres``, plus row and
archive helpers for the store, tasks and reliability tests.

``scripts/test.sh`` starts a private Redis and Postgres and exports
``DLGRADE_TEST_REDIS_URL`` / ``DLGRADE_TEST_DATABASE_URL``; a test that needs one fails
in CI and skips elsewhere when it is missing (``tests.conftest.require``). Every Postgres
test gets a database of its own (``CREATE DATABASE test_<random>``, dropped after).
Tests that must stop Redis start a :class:`PrivateRedis` of their own.

Import the fixtures into a test directory's conftest.py to use them.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from store.archives import ArchiveStore
from store.db import SessionFactory, make_engine, make_session_factory
from store.migrate import upgrade
from store.models import Assignment, Course, Submission, User
from tasks.settings import Settings
from tests.conftest import require

REDIS_URL = os.environ.get("DLGRADE_TEST_REDIS_URL", "")
POSTGRES_URL = os.environ.get("DLGRADE_TEST_DATABASE_URL", "")
REDIS_SERVER = os.environ.get("DLGRADE_TEST_REDIS_SERVER") or shutil.which("redis-server") or ""
TEST_REDIS_DB = 9  # the reliability tests' own logical database on the shared server


def redis_reachable(url: str) -> bool:
    if not url:
        return False
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def postgres_reachable(url: str) -> bool:
    if not url:
        return False
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    """The shared test Redis, logical database TEST_REDIS_DB, emptied."""
    require(redis_reachable(REDIS_URL), "Redis (set DLGRADE_TEST_REDIS_URL)")
    url = _redis_db(REDIS_URL, TEST_REDIS_DB)
    redis.Redis.from_url(url).flushdb()
    return url


def _redis_db(url: str, number: int) -> str:
    base, _, last = url.rstrip("/").rpartition("/")
    return f"{base}/{number}" if last.isdigit() else f"{url.rstrip('/')}/{number}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty Postgres database, dropped afterwards."""
    require(postgres_reachable(POSTGRES_URL), "Postgres (set DLGRADE_TEST_DATABASE_URL)")
    name = f"test_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: SQLite, then (marked postgres) a fresh Postgres database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dlgrade.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'dlgrade.db'}"


@pytest.fixture
def db_factory(any_database_url: str) -> Iterator[SessionFactory]:
    """Sessions on a migrated database (SQLite and Postgres)."""
    yield from _migrated(any_database_url)


@pytest.fixture
def sqlite_factory(sqlite_url: str) -> Iterator[SessionFactory]:
    """Sessions on a migrated SQLite database."""
    yield from _migrated(sqlite_url)


def _migrated(url: str) -> Iterator[SessionFactory]:
    upgrade(url)
    engine = make_engine(url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


# --- rows and archives ------------------------------------------------------------------


def tar_gz(root: Path) -> bytes:
    """``root``'s children packed as a .tar.gz (no __pycache__)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name,
                    filter=lambda info: None if "__pycache__" in info.name else info)
    return buffer.getvalue()


@dataclass
class World:
    """One course with one student; adds assignments and submissions with archives."""

    db_factory: SessionFactory
    data_dir: Path
    user_id: int
    course_id: int

    @classmethod
    def create(cls, db_factory: SessionFactory, data_dir: Path) -> World:
        with db_factory() as db:
            user = User(email=f"s{secrets.token_hex(3)}@example.org", password_hash="x")
            course = Course(slug=f"c-{secrets.token_hex(3)}", title="Course")
            db.add_all([user, course])
            db.commit()
            return cls(db_factory, data_dir, user.id, course.id)

    def assignment(self, slug: str = "mytorch-cnn", folder: Path | None = None,
                   **fields: Any) -> int:
        with self.db_factory() as db:
            assignment = Assignment(course_id=self.course_id, slug=slug, title=slug,
                                    folder=str(folder) if folder else None, **fields)
            db.add(assignment)
            db.commit()
            return assignment.id

    def submission(self, assignment_id: int, archive: bytes, **fields: Any) -> int:
        sha256, size = ArchiveStore(self.data_dir).put(io.BytesIO(archive), 1 << 30)
        with self.db_factory() as db:
            row = Submission(assignment_id=assignment_id,
                             user_id=fields.pop("user_id", self.user_id),
                             archive_sha256=sha256, archive_size=size, filename="h.tar.gz",
                             **fields)
            db.add(row)
            db.commit()
            return row.id

    def get(self, submission_id: int) -> Submission:
        with self.db_factory() as db:
            found = db.get(Submission, submission_id)
            assert found is not None
            return found


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Embedded-mode settings (no broker required) with test-friendly overrides."""
    mapping: dict[str, Any] = {
        "DLGRADE_DATA_DIR": str(data_dir), "DLGRADE_DATABASE_URL": database_url,
        "DLGRADE_EMBEDDED": "true", "DLGRADE_SECRET_KEY": "test-secret",
        "DLGRADE_SANDBOX": "none",
    }
    mapping.update({f"DLGRADE_{key.upper()}": str(value) for key, value in overrides.items()})
    return Settings.from_mapping(mapping)


def write_assignment(folder: Path, slug: str, check_name: str, check_body: str,
                     points: float = 10) -> Path:
    """A test-only assignment folder: one test, run by a trusted ``checks.py`` check
    named ``check_name`` whose body (indented 4) is ``check_body``. Check names must be
    unique per process: a second folder registering the same name is refused."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spec.toml").write_text(
        f'slug = "{slug}"\ntitle = "{slug}"\n\n[[tests]]\nname = "Only test"\n'
        f'check = "{check_name}"\npoints = {points}\ntimeout_s = 120\n', encoding="utf-8")
    body = "\n".join(f"    {line}" for line in check_body.strip().splitlines())
    (folder / "checks.py").write_text(
        "import os\nimport time\n\nfrom grader.registry import check\n\n\n"
        f'@check("{check_name}")\ndef the_check(ctx):\n{body}\n', encoding="utf-8")
    return folder


class Recorder:
    """An Enqueuer that records its calls; ``up=False`` is a broker that is down."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.calls: list[tuple[int, str]] = []

    def enqueue(self, submission_id: int, queue: str) -> bool:
        self.calls.append((submission_id, queue))
        return self.up


def trivial_handin(folder: Path) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "answer.py").write_text("ANSWER = 42\n", encoding="utf-8")
    return tar_gz(folder)


def wait_for(predicate: Any, timeout: float, interval: float = 0.2, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


# --- a Redis of the test's own ------------------------------------------------------------


class PrivateRedis:
    """A redis-server on a port of its own (AOF on, noeviction), stoppable mid-test."""

    def __init__(self, directory: Path) -> None:
        require(bool(REDIS_SERVER), "redis-server (set DLGRADE_TEST_REDIS_SERVER)")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--maxmemory-policy", "noeviction",
             "--dir", str(self.directory), "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: redis_reachable(self.url), 10, 0.05, "the private Redis to start")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "private-redis")
    try:
        yield server
    finally:
        server.stop()


# -- host inspection and the Docker engine -------------------------------------------------


@dataclass(frozen=True)
class HostProcess:
    pid: int
    uids: tuple[int, ...]  # real, effective, saved, filesystem


def live_processes() -> list[HostProcess]:
    """Every live (non-zombie) process on this host, with its uids, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "Z").split()[:1] == ["Z"]:
            continue
        uids = tuple(int(u) for u in fields.get("Uid", "").split())
        found.append(HostProcess(int(entry), uids))
    return found


def docker_with_local_image() -> Any:
    """A client of this host's Docker engine, which now has the image of ``dlgrade sandbox
    build-local``; fails in CI, skips elsewhere, when no engine answers."""
    from sandbox.docker_engine import DockerUnavailable, connect
    from sandbox.docker_images import LOCAL_IMAGE, build_local_image

    try:
        client = connect(10)
    except DockerUnavailable as exc:
        require(False, f"a Docker engine ({exc})")
        raise
    build_local_image(client, LOCAL_IMAGE)
    return client
