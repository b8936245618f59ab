"""The service commands of dlgrade/service_cli.py (serve itself: tests/browser)."""

from __future__ import annotations

import io
import os
import stat
import time
from pathlib import Path

import pytest

from dlgrade.cli import main
from dlgrade.service_cli import embedded_config, kept_secret
from store.archives import ArchiveStore
from store.db import make_engine, make_session_factory
from store.users import authenticate, user_for_token
from tests.services import World


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DLGRADE_DATABASE_URL", "DLGRADE_SECRET_KEY", "DLGRADE_BROKER_URL",
                 "DLGRADE_EMBEDDED", "DLGRADE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "data"
    assert main(["migrate", "--data-dir", str(folder)]) == 0
    return folder


def check_login(data_dir: Path, email: str, password: str) -> bool:
    engine = make_engine(f"sqlite:///{data_dir / 'dlgrade.db'}")
    try:
        with make_session_factory(engine)() as db:
            return authenticate(db, email, password) is not None
    finally:
        engine.dispose()


def test_migrate_reports_the_revision(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--data-dir", str(data_dir)]) == 0  # again: idempotent
    assert "(newest)" in capsys.readouterr().out


def test_users_add_and_tokens_create(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["users", "add", "TA@Uni.edu", "--role", "staff", "--password", "pw1",
                 "--data-dir", str(data_dir)]) == 0
    assert "Added ta@uni.edu (staff)." in capsys.readouterr().out
    assert check_login(data_dir, "ta@uni.edu", "pw1")

    assert main(["tokens", "create", "ta@uni.edu", "--data-dir", str(data_dir)]) == 0
    token = capsys.readouterr().out.strip()
    engine = make_engine(f"sqlite:///{data_dir / 'dlgrade.db'}")
    with make_session_factory(engine)() as db:
        user = user_for_token(db, token)
        assert user is not None and user.email == "ta@uni.edu"
    engine.dispose()


def test_users_add_refusals(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--password", "pw", "--data-dir", str(data_dir)]
    assert main(["users", "add", "a@b.c", "--course", "nope", *args]) == 2
    assert "there is no course 'nope'." in capsys.readouterr().err
    assert main(["users", "add", "a@b.c", *args]) == 0
    assert main(["users", "add", "a@b.c", *args]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["tokens", "create", "nobody@b.c", "--data-dir", str(data_dir)]) == 2


def test_web_refuses_without_a_secret(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["web"]) == 2
    assert "DLGRADE_SECRET_KEY is not set" in capsys.readouterr().err


def test_worker_checks_its_queues(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker", "--queues", "cpu,tpu"]) == 2
    assert "--queues takes cpu, gpu or cpu,gpu" in capsys.readouterr().err


def test_embedded_secret_is_kept_per_data_dir(tmp_path: Path) -> None:
    first = kept_secret(tmp_path)
    assert kept_secret(tmp_path) == first and len(first) == 64
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert embedded_config(tmp_path, "process", {"DLGRADE_SECRET_KEY": "given"})[
        "DLGRADE_SECRET_KEY"] == "given"
    assert embedded_config(tmp_path, "process", {})["DLGRADE_SECRET_KEY"] == first


def test_tokens_create_with_scopes(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import select

    from store.models import ApiToken

    args = ["--data-dir", str(data_dir)]
    assert main(["users", "add", "s@uni.edu", "--password", "pw", *args]) == 0
    assert main(["tokens", "create", "s@uni.edu", "--scope", "submissions:read",
                 "--scope", "assignments:read", *args]) == 0
    assert "assignments:read submissions:read" in capsys.readouterr().err
    engine = make_engine(f"sqlite:///{data_dir / 'dlgrade.db'}")
    with make_session_factory(engine)() as db:
        assert db.scalars(select(ApiToken.scopes)).all() == ["assignments:read submissions:read"]
    engine.dispose()

    assert main(["tokens", "create", "s@uni.edu", "--scope", "regrade", *args]) == 2
    assert "a student token cannot have the staff scope 'regrade'" in capsys.readouterr().err
    assert main(["tokens", "create", "s@uni.edu", "--scope", "everything", *args]) == 2
    assert "unknown scope 'everything'" in capsys.readouterr().err


def test_tokens_create_gives_a_ta_the_staff_scopes(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A student account that is staff of a course (a TA) gets the staff scopes from the
    CLI, as from the settings page and the API (web.access.account_role)."""
    from sqlalchemy import select

    from store.models import ApiToken, Course, Enrollment, User

    args = ["--data-dir", str(data_dir)]
    assert main(["users", "add", "ta@uni.edu", "--password", "pw", *args]) == 0
    assert main(["tokens", "create", "ta@uni.edu", "--scope", "scores:read", *args]) == 2
    assert "a student token cannot have the staff scope 'scores:read'" in \
        capsys.readouterr().err
    engine = make_engine(f"sqlite:///{data_dir / 'dlgrade.db'}")
    with make_session_factory(engine)() as db:
        course = Course(slug="dl", title="DL")
        db.add(course)
        db.flush()
        user = db.scalars(select(User).where(User.email == "ta@uni.edu")).one()
        db.add(Enrollment(user_id=user.id, course_id=course.id, role="staff"))
        db.commit()
    assert main(["tokens", "create", "ta@uni.edu", "--scope", "scores:read", *args]) == 0
    assert "with the scopes scores:read;" in capsys.readouterr().err
    assert main(["tokens", "create", "ta@uni.edu", *args]) == 0
    assert ("with the scopes assignments:read regrade scores:read submissions:read "
            "submissions:write webhooks;") in capsys.readouterr().err
    with make_session_factory(engine)() as db:
        assert db.scalars(select(ApiToken.scopes).order_by(ApiToken.id)).all() == [
            "scores:read", ""]
    engine.dispose()


def test_archives_gc_removes_old_garbage_and_reports_it(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ArchiveStore(data_dir)
    engine = make_engine(f"sqlite:///{data_dir / 'dlgrade.db'}")
    try:
        world = World.create(make_session_factory(engine), data_dir)
        kept = store.path(world.get(world.submission(world.assignment(), b"handin")).archive_sha256)
    finally:
        engine.dispose()
    orphan = store.path(store.put(io.BytesIO(b"orphan!"), 100)[0])
    crashed = store.stage(io.BytesIO(b"crash"), 100).path
    day_ago = time.time() - 25 * 3600
    for path in (kept, orphan, crashed):
        os.utime(path, (day_ago, day_ago))
    args = ["archives", "gc", "--data-dir", str(data_dir)]

    assert main([*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"Would remove unreferenced {orphan.relative_to(store.root)} (7 bytes)" in out
    assert f"Would remove staged {crashed.name} (5 bytes)" in out
    assert "Would remove 2 files; would free 12 bytes" in out
    assert orphan.exists() and crashed.exists()

    assert main([*args, "--older-than", "26"]) == 0  # not old enough yet
    assert "Removed 0 files; freed 0 bytes" in capsys.readouterr().out

    assert main(args) == 0
    assert "Removed 2 files; freed 12 bytes" in capsys.readouterr().out
    assert not orphan.exists() and not crashed.exists() and kept.exists()

    assert main([*args, "--older-than", "0"]) == 2
    assert "--older-than must be a positive number of hours" in capsys.readouterr().err


def test_roster_import_list_remove_and_reset_link(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(["migrate", *data]) == 0
    assert main(["users", "add", "prof@uni.edu", "--role", "staff", "--password", "pw", *data]) == 0
    from store.courses import create_course

    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'dlgrade.db'}")
    with make_session_factory(engine)() as db:
        create_course(db, "dl101", "Deep learning")
        db.commit()
    engine.dispose()
    roster = tmp_path / "roster.csv"
    roster.write_text("email,name,role\nann@uni.edu,Ann,student\nprof@uni.edu,,staff\nbad,,x\n")
    capsys.readouterr()
    url = ["--url", "https://g.uni.edu"]
    assert main(["roster", "import", "dl101", str(roster), *data, *url]) == 0
    out = capsys.readouterr().out
    assert "2 enrolled, 1 new accounts" in out and "skipped line 4" in out
    assert "ann@uni.edu  https://g.uni.edu/password/reset/" in out
    assert main(["roster", "list", "dl101", *data]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["prof@uni.edu,,staff",
                                                        "ann@uni.edu,Ann,student"]
    assert main(["users", "reset-link", "ann@uni.edu", *data]) == 0
    assert "/password/reset/" in capsys.readouterr().out
    assert main(["roster", "remove", "dl101", "ann@uni.edu", *data]) == 0
    assert main(["roster", "remove", "dl101", "ann@uni.edu", *data]) == 2
