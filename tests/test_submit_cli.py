"""``dlgrade submit`` (dlgrade/submit_cli.py) against the real app served by werkzeug on
127.0.0.1 in a thread; a fake grader (the enqueuer) stores a result shortly after each
upload, so the command's polling and table are exercised end to end."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from dlgrade.cli import main
from dlgrade.submit_cli import MultipartFile, Progress
from store.models import Submission, TestScore, utcnow
from tests.conftest import MYTORCH_SOLUTION
from tests.services import free_port, tar_gz
from tests.web.factories import Factory, gs_test
from web import create_app
from web.services import ENQUEUER_KEY, Services

TESTS = [gs_test(1, "Conv1d forward", 5, 5), gs_test(2, "Conv1d backward", 0, 5,
                                                      output="dW differs at [0, 1]")]


class FakeGrader:
    """Marks each enqueued submission ``done`` (or ``error``) after a short delay."""

    def __init__(self) -> None:
        self.services: Services | None = None
        self.services_app: Flask = Flask(__name__)
        self.outcome = "done"

    def enqueue(self, submission_id: int, queue: str) -> bool:
        threading.Timer(0.3, self.grade, args=(submission_id,)).start()
        return True

    def grade(self, submission_id: int) -> None:
        assert self.services is not None
        with self.services.db_factory() as db:
            if self.outcome == "error":
                values = {"status": "error", "error": "Your archive has no hw2/ folder."}
            else:
                values = {"status": "done", "score": 5.0, "max_score": 10.0,
                          "results": {"score": 5.0, "tests": TESTS}}
            db.execute(update(Submission).where(Submission.id == submission_id)
                       .values(finished_at=utcnow(), **values))
            for position, test in enumerate(TESTS if self.outcome == "done" else []):
                db.add(TestScore(submission_id=submission_id, position=position,
                                 number=test["number"], name=test["name"], score=test["score"],
                                 max_score=test["max_score"], outcome=test["status"],
                                 visibility="visible", output=test["output"]))
            db.commit()


@dataclass
class Server:
    url: str
    token: str
    grader: FakeGrader
    handin: Path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    from store.migrate import upgrade

    sqlite_url = f"sqlite:///{tmp_path / 'dlgrade.db'}"
    upgrade(sqlite_url)
    grader = FakeGrader()
    app: Flask = create_app({
        "DLGRADE_DATA_DIR": str(tmp_path / "data"), "DLGRADE_DATABASE_URL": sqlite_url,
        "DLGRADE_EMBEDDED": "true", "DLGRADE_SECRET_KEY": "test", ENQUEUER_KEY: grader})
    services: Services = app.extensions["dlgrade"]
    grader.services, grader.services_app = services, app
    with services.db_factory() as db:
        make = Factory(db)
        course = make.course("dl101")
        alice = make.user(email="alice@example.edu")
        make.enroll(alice, course)
        make.assignment(course)
        token = make.token(alice)
    handin = tmp_path / "handin.tar.gz"
    handin.write_bytes(tar_gz(MYTORCH_SOLUTION))
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{http.server_port}", token, grader, handin)
    finally:
        http.shutdown()
        thread.join(5)
        services.engine.dispose()


def submit(server: Server, *extra: str, token: str | None = None) -> list[str]:
    return ["submit", "--server", server.url, "--token", token or server.token,
            "--interval", "0.1", "--timeout", "20", *extra]


def test_submit_waits_and_prints_the_table(server: Server,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(submit(server, "mytorch-cnn", str(server.handin))) == 0
    out, err = capsys.readouterr()
    assert "Conv1d forward" in out and "5/5" in out and "0/5" in out
    assert "total" in out and "5/10" in out
    assert "dW differs at [0, 1]" in out  # the failing test's message
    assert "Uploaded" in err  # not a terminal: one plain line


def test_submit_json_and_token_from_environment(server: Server, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import json

    monkeypatch.setenv("DLGRADE_TOKEN", server.token)
    args = ["submit", "--server", server.url, "--interval", "0.1", "mytorch-cnn",
            str(server.handin), "--json"]
    assert main(args) == 0
    body = json.loads(capsys.readouterr().out)
    assert (body["status"], body["score"]) == ("done", 5.0)


def test_submit_no_wait(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(submit(server, "mytorch-cnn", str(server.handin), "--no-wait")) == 0
    assert "as submission 1:" in capsys.readouterr().out


def test_bad_token_is_one_sentence(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(submit(server, "mytorch-cnn", str(server.handin), token="dlg_wrong")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("dlgrade: the server refused the token: That API token is not valid "
                       "(it may have been revoked).")


def test_rejected_upload_shows_the_server_sentence(server: Server, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    assert main(submit(server, "mytorch-cnn", str(junk))) == 2
    assert "not a valid" in capsys.readouterr().err
    assert main(submit(server, "no-such-hw", str(server.handin))) == 2
    assert "There is no assignment 'no-such-hw'" in capsys.readouterr().err


def test_grading_error_exits_2(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.grader.outcome = "error"
    assert main(submit(server, "mytorch-cnn", str(server.handin))) == 2
    assert "could not be graded: Your archive has no hw2/ folder." in capsys.readouterr().err


def test_submit_says_the_queue_position_while_it_waits(
        server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    grade_later = server.grader.enqueue

    def enqueue(submission_id: int, queue: str) -> bool:  # graded 0.5 s later than usual
        threading.Timer(0.5, grade_later, args=(submission_id, queue)).start()
        return True

    server.grader.enqueue = enqueue  # type: ignore[method-assign]
    assert main(submit(server, "mytorch-cnn", str(server.handin))) == 0
    captured = capsys.readouterr()
    assert captured.err.count("queued — position 1 in queue. No grader is running right now")\
        == 1  # said once, not at every poll
    assert "Conv1d forward" in captured.out


def test_timeout_exits_2(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.grader.enqueue = lambda submission_id, queue: True  # type: ignore[method-assign]
    args = submit(server, "mytorch-cnn", str(server.handin))
    args[args.index("--timeout") + 1] = "0.3"
    assert main(args) == 2
    assert "was not graded within 0.3 s" in capsys.readouterr().err


def test_unreachable_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handin = tmp_path / "h.tar"
    handin.write_bytes(b"x")
    args = ["submit", "--server", f"http://127.0.0.1:{free_port()}", "--token", "t",
            "--retries", "2", "--retry-delay", "0.01", "mytorch-cnn", str(handin)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("Trying again in") == 2  # then it gives up with the sentence
    assert err.strip().endswith(").") and "could not reach http://127.0.0.1:" in err


def test_an_upload_whose_answer_is_lost_is_resent_with_its_key_and_stored_once(
        server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    """The first POST is stored but answered 502 (a proxy that lost the web worker):
    the resend carries the same Idempotency-Key and gets the first one's submission."""
    app = server.grader.services_app
    inner, seen = app.wsgi_app, []

    def lose_first_answer(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST":
            seen.append(environ.get("HTTP_IDEMPOTENCY_KEY"))
            if len(seen) == 1:
                for _ in inner(environ, lambda *a, **k: None):
                    pass
                start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
                return [b"bad gateway"]
        return inner(environ, start_response)

    app.wsgi_app = lose_first_answer  # type: ignore[method-assign]
    args = submit(server, "mytorch-cnn", str(server.handin), "--retry-delay", "0.01")
    assert main(args) == 0
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0]
    assert "the server answered HTTP 502. Trying again in 0.01 s." in capsys.readouterr().err
    assert server.grader.services is not None
    with server.grader.services.db_factory() as db:
        assert db.scalar(select(func.count(Submission.id))) == 1


def test_missing_token_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DLGRADE_TOKEN", raising=False)
    assert main(["submit", "--server", "http://x", "hw", str(tmp_path / "h.tar")]) == 2
    assert "give an API token" in capsys.readouterr().err
    assert main(["submit", "--server", "http://x", "--token", "t", "hw",
                 str(tmp_path / "h.tar")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_multipart_body_streams_in_chunks(tmp_path: Path) -> None:
    import io

    seen: list[tuple[int, int]] = []
    body = MultipartFile(io.BytesIO(b"a" * 150_000), "h.tar", 150_000,
                         lambda sent, total: seen.append((sent, total)))
    data = b"".join(iter(lambda: body.read(65536), b""))
    assert len(data) == body.length and data.count(b"a" * 150_000) == 1
    assert [sent for sent, _ in seen] == [65536, 131072, 150000]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_counts_down_in_place_on_a_terminal_and_once_per_status_in_a_log() -> None:
    answers = [{"status": "queued", "message": "queued — position 2 in queue, about 9 s to go"},
               {"status": "queued", "message": "queued — position 1 in queue, about 4 s to go"},
               {"status": "queued", "message": "queued — position 1 in queue, about 4 s to go"},
               {"status": "running", "message": "running"}]
    log, terminal = io.StringIO(), Terminal()
    for stream in (log, terminal):
        progress = Progress(stream)
        for body in answers:
            progress(body)
        progress.end()
    assert log.getvalue() == "queued — position 2 in queue, about 9 s to go\nrunning\n"
    assert terminal.getvalue() == ("\r\033[Kqueued — position 2 in queue, about 9 s to go"
                                   "\r\033[Kqueued — position 1 in queue, about 4 s to go"
                                   "\r\033[Krunning\n")
