"""web/uploads.py through the upload form: the policy checks and durable storage."""

from __future__ import annotations

import io
import threading
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from grader.spec import resolve_assignment
from store.archives import ArchiveStore
from store.models import Assignment, Submission, User
from tests.services import Recorder
from tests.web.conftest import services_of
from tests.web.factories import AuthActions, Factory, World, big_upload
from web.uploads import UploadRejected, accept_upload, check_open, clean_filename, late_days


def upload(client: FlaskClient, auth: AuthActions, assignment: Assignment, content: bytes,
           name: str = "handin.tar.gz") -> TestResponse:
    form = {"file": (io.BytesIO(content), name), "csrf_token": auth.token()}
    return client.post(f"/assignments/{assignment.id}/submissions", data=form,
                       content_type="multipart/form-data")


def rows(db: Session) -> list[Submission]:
    db.expire_all()
    return list(db.scalars(select(Submission).order_by(Submission.id)))


@pytest.fixture
def alice(auth: AuthActions, world: World) -> World:
    auth.login(world.alice.email)
    return world


def test_upload_is_stored_queued_and_enqueued(
    app: Flask, client: FlaskClient, auth: AuthActions, alice: World, handin: bytes,
    db: Session, enqueuer: Recorder,
) -> None:
    response = upload(client, auth, alice.assignment, handin)
    [row] = rows(db)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/submissions/{row.id}"
    assert (row.status, row.attempt, row.user_id, row.late_days) == ("queued", 0, alice.alice.id, 0)
    assert row.filename == "handin.tar.gz" and row.archive_size == len(handin)
    stored = ArchiveStore(services_of(app).settings.data_dir).path(row.archive_sha256)
    assert stored.read_bytes() == handin
    assert enqueuer.calls == [(row.id, "cpu")]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "queued — position 1 in queue" in page


def test_no_file_chosen(client: FlaskClient, auth: AuthActions, alice: World, db: Session) -> None:
    response = client.post(f"/assignments/{alice.assignment.id}/submissions",
                           data={"csrf_token": auth.token()}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose a .tar, .tar.gz or .zip file to upload." in response.get_data(as_text=True)
    assert rows(db) == []


def test_too_large(client: FlaskClient, auth: AuthActions, make: Factory, world: World,
                   db: Session, tmp_path: Path) -> None:
    folder = small_limit_assignment(tmp_path, max_bytes=1 << 20)
    small = make.assignment(world.course, slug="small", title="Small", folder=str(folder))
    auth.login(world.alice.email)
    url = f"/assignments/{small.id}/submissions"
    fields = {"csrf_token": auth.token()}
    with big_upload(client, url, b"\0" * int(2.5 * (1 << 20)), fields) as response:
        assert response.status_code == 413
        assert "Your file is 2.5 MB; the limit is 1 MB." in response.get_data(as_text=True)
    assert rows(db) == []


def test_too_large_for_the_request_limit(app: Flask, client: FlaskClient, auth: AuthActions,
                                         alice: World, db: Session) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    url = f"/assignments/{alice.assignment.id}/submissions"
    fields = {"csrf_token": auth.token()}
    with big_upload(client, url, b"\0" * (3 << 20), fields) as response:
        assert response.status_code == 413
        assert "Your file is 3.0 MB; the limit is 16 MB." in response.get_data(as_text=True)
    assert rows(db) == []


@pytest.mark.parametrize("content, sentence", [
    (b"this is not an archive at all", "This file is not a valid .tar, .tar.gz or .zip archive."),
    (b"\x1f\x8b\x08\x00" + b"\0" * 40, "not a valid"),
])
def test_corrupt_archive_gets_the_extractor_sentence(
    client: FlaskClient, auth: AuthActions, alice: World, db: Session, content: bytes,
    sentence: str,
) -> None:
    response = upload(client, auth, alice.assignment, content, "handin.tar.gz")
    assert response.status_code == 422
    assert sentence in response.get_data(as_text=True)
    assert rows(db) == []


def test_archive_with_the_wrong_folders_is_refused(
    client: FlaskClient, auth: AuthActions, alice: World, db: Session
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("homework/notes.txt", "hello")
    response = upload(client, auth, alice.assignment, buffer.getvalue(), "handin.zip")
    assert response.status_code == 422
    assert "Your archive contains none of the files this assignment grades (mytorch/conv.py, " \
        in response.get_data(as_text=True)
    assert rows(db) == []


def test_type_is_judged_by_content_not_name(
    client: FlaskClient, auth: AuthActions, alice: World, handin: bytes, db: Session
) -> None:
    assert upload(client, auth, alice.assignment, handin, "my work.zip").status_code == 302
    assert [r.filename for r in rows(db)] == ["my work.zip"]


def test_before_release(client: FlaskClient, auth: AuthActions, make: Factory, world: World,
                        handin: bytes) -> None:
    release = datetime(2999, 1, 4, 9, 0, tzinfo=UTC)
    future = make.assignment(world.course, slug="later", title="Later", release_at=release,
                             due_at=release + timedelta(days=7))
    auth.login(world.alice.email)
    assert client.get(f"/assignments/{future.id}").status_code == 404  # not listed either
    assert upload(client, auth, future, handin).status_code == 404
    with pytest.raises(UploadRejected) as rejected:  # the check behind the lookup
        check_open(future, datetime.now(UTC))
    assert rejected.value.status == 403
    assert rejected.value.message == \
        "Later is not open yet; it opens on Fri 04 Jan 2999, 09:00 UTC."


def test_after_late_due(client: FlaskClient, auth: AuthActions, make: Factory, world: World,
                        db: Session, handin: bytes) -> None:
    due = datetime(2020, 3, 1, 23, 59, tzinfo=UTC)
    closed = make.assignment(world.course, slug="old", title="HW0", release_at=due - timedelta(30),
                             due_at=due, late_due_at=due + timedelta(days=2))
    auth.login(world.alice.email)
    response = upload(client, auth, closed, handin)
    assert response.status_code == 403
    assert ("The deadline for HW0 passed on Sun 01 Mar 2020, 23:59 UTC; late submissions closed "
            "on Tue 03 Mar 2020, 23:59 UTC.") in response.get_data(as_text=True)
    assert rows(db) == []


def test_after_due_without_late_window(client: FlaskClient, auth: AuthActions, make: Factory,
                                       world: World, handin: bytes) -> None:
    closed = make.assignment(world.course, slug="old", title="HW0",
                             due_at=datetime.now(UTC) - timedelta(hours=1))
    auth.login(world.alice.email)
    response = upload(client, auth, closed, handin)
    assert response.status_code == 403
    assert "late submissions are not accepted." in response.get_data(as_text=True)


def test_late_submission_records_late_days(client: FlaskClient, auth: AuthActions,
                                           make: Factory, world: World, db: Session,
                                           handin: bytes) -> None:
    now = datetime.now(UTC)
    late = make.assignment(world.course, slug="late", title="Late",
                           due_at=now - timedelta(hours=30), late_due_at=now + timedelta(days=3),
                           late_penalty_per_day=0.1)
    auth.login(world.alice.email)
    assert upload(client, auth, late, handin).status_code == 302
    [row] = rows(db)
    assert row.late_days == 2
    page = client.get(f"/submissions/{row.id}").get_data(as_text=True)
    assert "2 days" in page


def test_daily_limit(client: FlaskClient, auth: AuthActions, make: Factory, world: World,
                     db: Session, handin: bytes) -> None:
    limited = make.assignment(world.course, slug="limited", title="Limited", daily_limit=2)
    yesterday = datetime.now(UTC) - timedelta(days=1, minutes=1)
    make.submission(world.alice, limited, created_at=yesterday)  # does not count today
    auth.login(world.alice.email)
    assert upload(client, auth, limited, handin).status_code == 302
    assert upload(client, auth, limited, handin).status_code == 302
    response = upload(client, auth, limited, handin)
    assert response.status_code == 429
    assert ("You have used 2 of 2 submissions today; the limit resets at midnight UTC."
            in response.get_data(as_text=True))
    assert len(rows(db)) == 3


def test_staff_are_exempt_from_deadlines(client: FlaskClient, auth: AuthActions, make: Factory,
                                         world: World, db: Session, handin: bytes) -> None:
    closed = make.assignment(world.course, slug="old", title="HW0",
                             due_at=datetime.now(UTC) - timedelta(days=10), daily_limit=0)
    auth.login(world.staff.email)
    assert upload(client, auth, closed, handin).status_code == 302
    assert [r.late_days for r in rows(db)] == [0]


def test_broker_down_still_accepts(client: FlaskClient, auth: AuthActions, alice: World,
                                   db: Session, handin: bytes, enqueuer: Recorder) -> None:
    enqueuer.up = False
    response = upload(client, auth, alice.assignment, handin)
    assert response.status_code == 302
    [row] = rows(db)
    assert row.status == "queued"
    assert enqueuer.calls == [(row.id, "cpu")]


def test_other_students_assignment_is_404(client: FlaskClient, auth: AuthActions, make: Factory,
                                          world: World, handin: bytes) -> None:
    elsewhere = make.assignment(make.course("other"), slug="x", title="Elsewhere")
    auth.login(world.alice.email)
    assert upload(client, auth, elsewhere, handin).status_code == 404


@pytest.mark.parametrize("hours_late, days", [(0, 0), (0.01, 1), (24, 1), (24.5, 2), (71, 3)])
def test_late_days_round_up(make: Factory, world: World, hours_late: float, days: int) -> None:
    due = datetime(2026, 1, 1, tzinfo=UTC)
    world.assignment.due_at = due
    assert late_days(world.assignment, due + timedelta(hours=hours_late)) == days


# --- rejected uploads leave nothing behind -------------------------------------------------


def archive_files(app: Flask) -> list[str]:
    """Every file under the archive store, staging files included, relative names."""
    root = services_of(app).archives.root
    return sorted(str(f.relative_to(root)) for f in root.rglob("*") if f.is_file()) \
        if root.exists() else []


def test_a_rejected_upload_leaves_no_file(app: Flask, client: FlaskClient, auth: AuthActions,
                                          alice: World, db: Session) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("homework/notes.txt", "hello")
    assert upload(client, auth, alice.assignment, buffer.getvalue(), "h.zip").status_code == 422
    assert upload(client, auth, alice.assignment, b"not an archive").status_code == 422
    assert rows(db) == []
    assert archive_files(app) == []


def test_a_rejected_upload_keeps_the_same_content_of_an_accepted_one(
    app: Flask, client: FlaskClient, auth: AuthActions, make: Factory, world: World,
    db: Session, handin: bytes, tmp_path: Path,
) -> None:
    """Content-addressed: the refused copy has the accepted one's name, which stays."""
    other = make.assignment(world.course, slug="other", title="Other",
                            folder=str(other_files_assignment(tmp_path)))
    auth.login(world.alice.email)
    assert upload(client, auth, world.assignment, handin).status_code == 302
    [row] = rows(db)
    stored = services_of(app).archives.path(row.archive_sha256)
    refused = upload(client, auth, other, handin)
    assert refused.status_code == 422
    assert "none of the files this assignment grades" in refused.get_data(as_text=True)
    assert stored.read_bytes() == handin
    assert archive_files(app) == [f"{row.archive_sha256[:2]}/{row.archive_sha256}"]


def other_files_assignment(tmp_path: Path) -> Path:
    """A copy of the mytorch-cnn spec that grades other files."""
    source = resolve_assignment("mytorch-cnn").folder / "spec.toml"
    folder = tmp_path / "other-files"
    folder.mkdir()
    text = source.read_text()
    start = text.index("required_files")
    end = text.index("]", start) + 1
    (folder / "spec.toml").write_text(text[:start] + 'required_files = ["hw9/nothing.py"]'
                                      + text[end:])
    return folder


# --- the daily limit holds under concurrent uploads --------------------------------------


def test_concurrent_uploads_cannot_overrun_the_daily_limit(
    app: Flask, make: Factory, world: World, handin: bytes
) -> None:
    """Eight uploads at once against a limit of three: exactly three are accepted (on
    SQLite and, marked postgres, on Postgres), and the refused ones leave no file."""
    limited = make.assignment(world.course, slug="limited", title="Limited", daily_limit=3)
    services = services_of(app)
    start = threading.Barrier(8)
    outcomes: list[int] = []

    def one() -> None:
        with services.db_factory() as session:
            user = session.get(User, world.alice.id)
            assignment = session.get(Assignment, limited.id)
            assert user is not None and assignment is not None
            start.wait()
            try:
                accept_upload(session, services.settings, user, assignment,
                              io.BytesIO(handin), "h.tar.gz", datetime.now(UTC))
            except UploadRejected as rejected:
                outcomes.append(rejected.status)
            else:
                outcomes.append(202)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(outcomes) == [202] * 3 + [429] * 5
    with services.db_factory() as session:
        accepted = session.scalars(select(Submission.archive_sha256)
                                   .where(Submission.assignment_id == limited.id)).all()
    assert len(accepted) == 3
    [sha256] = set(accepted)
    assert archive_files(app) == [f"{sha256[:2]}/{sha256}"]


def test_clean_filename() -> None:
    assert clean_filename("C:\\Users\\me\\hand\x00in.tar") == "handin.tar"
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("") == "upload"


def small_limit_assignment(tmp_path: Path, max_bytes: int) -> Path:
    """A copy of the mytorch-cnn spec with a smaller upload limit."""
    source = resolve_assignment("mytorch-cnn").folder / "spec.toml"
    folder = tmp_path / "small"
    folder.mkdir()
    text = source.read_text().replace("[submission]", f"[submission]\nmax_bytes = {max_bytes}")
    (folder / "spec.toml").write_text(text)
    return folder


# --- required files -------------------------------------------------------------------------


def test_a_handin_missing_required_files_is_refused_and_not_counted(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World, db: Session,
    tmp_path: Path,
) -> None:
    """Two of the seven files left out: refused with both named, on the page and in the
    API, and the daily limit (one a day) is still unused, so the full handin goes in."""
    from tests.conftest import MYTORCH_SOLUTION
    from tests.services import tar_gz

    limited = make.assignment(world.course, slug="once", title="Once a day", daily_limit=1)
    partial = tmp_path / "partial"
    import shutil

    shutil.copytree(MYTORCH_SOLUTION, partial)
    (partial / "hw2" / "mc.py").unlink()
    (partial / "mytorch" / "loss.py").unlink()
    auth.login(world.alice.email)
    for _ in range(2):  # refused twice: neither counts
        refused = upload(client, auth, limited, tar_gz(partial))
        assert refused.status_code == 422
        text = refused.get_data(as_text=True)
        assert "lacks 2 of the 7 required files: mytorch/loss.py, hw2/mc.py" in text
        assert "<li><code>hw2/mc.py</code></li>" in text and "daily limit is untouched" in text
    assert rows(db) == []
    page = client.get(f"/assignments/{limited.id}").get_data(as_text=True)
    assert "0 of 1 used" in page
    token = make.token(world.alice)
    api = client.post("/api/v1/assignments/once/submissions",
                      headers={"Authorization": f"Bearer {token}"},
                      data={"file": (io.BytesIO(tar_gz(partial)), "h.tar.gz")})
    assert api.status_code == 422
    assert api.get_json()["missing"] == ["mytorch/loss.py", "hw2/mc.py"]
    assert upload(client, auth, limited, tar_gz(MYTORCH_SOLUTION)).status_code == 302
    assert len(rows(db)) == 1


def test_another_semesters_homework_is_refused_with_what_it_is(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World, db: Session,
    tmp_path: Path,
) -> None:
    """A fall-2020 HW2P1 (layers on an autograd Tensor in mytorch/nn/) is told which
    handout it follows, not that it lacks five files of this one."""
    from tests.services import tar_gz

    limited = make.assignment(world.course, slug="once", title="Once a day", daily_limit=1)
    fall = tmp_path / "fall"
    for path in ("mytorch/nn/conv.py", "mytorch/tensor.py", "hw2/hw2.py", "hw2/mlp_scan.py"):
        (fall / path).parent.mkdir(parents=True, exist_ok=True)
        (fall / path).write_text("import numpy as np\n")
    auth.login(world.alice.email)
    refused = upload(client, auth, limited, tar_gz(fall))
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "follows the fall-2020 HW2P1 handout" in text and "lacks" not in text
    assert rows(db) == []
