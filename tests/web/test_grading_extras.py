"""Manual adjustments (kept through regrades), the earlier score after a regrade and
the student's notice, the student's choice of the submission that counts, the code
view with line comments, and the live progress of a running grading."""

from __future__ import annotations

import csv
import io

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from store import progress
from store.models import Submission
from tests.web.conftest import services_of
from tests.web.factories import AuthActions, Factory, World, csrf_token, gs_test


def graded_pair(make: Factory, world: World) -> tuple[Submission, Submission]:
    first = make.graded(world.alice, world.assignment, [gs_test(1, "Multiple choice", 3, 5),
                                                        gs_test(2, "Hidden one", 0, 5,
                                                                visibility="hidden")])
    second = make.graded(world.alice, world.assignment, [gs_test(1, "Multiple choice", 4, 5),
                                                         gs_test(2, "Hidden one", 5, 5,
                                                                 visibility="hidden")])
    return first, second


def post(client: FlaskClient, page: str, url: str, **data: str) -> object:
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


def test_an_adjustment_is_shown_counted_and_survives_a_regrade(
        client: FlaskClient, auth: AuthActions, make: Factory, world: World, db: Session,
        app: Flask) -> None:
    first, second = graded_pair(make, world)
    auth.login(world.staff.email)
    page = f"/staff/submissions/{first.id}"
    bad = post(client, page, f"{page}/adjustments", points="x", comment="typo")
    assert bad.status_code == 400  # type: ignore[attr-defined]
    post(client, page, f"{page}/adjustments", points="2.5", comment="Late bug in our test")
    body = client.get(f"/staff/assignments/{world.assignment.id}/gradebook.csv")
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(body.get_data(as_text=True)))}
    assert rows["alice@example.edu"]["mytorch-cnn"] == "9"  # 10 without; 3 + 2.5 = 5.5 loses
    post(client, page, f"{page}/regrade")
    db.expire_all()
    auth.logout()
    auth.login(world.alice.email)
    view = client.get(f"/submissions/{first.id}").get_data(as_text=True)
    assert "Late bug in our test" in view and "+2.5 points" in view  # kept through the reset
    assert "Earlier results of this submission" in view
    assert "5.5 / 5" in view and "/ 10" not in view  # 3 + 2.5; the hidden test stays hidden


def test_a_finished_regrade_is_announced_until_seen(
        client: FlaskClient, auth: AuthActions, make: Factory, world: World,
        db: Session) -> None:
    first, _ = graded_pair(make, world)
    auth.login(world.staff.email)
    post(client, f"/staff/submissions/{first.id}", f"/staff/submissions/{first.id}/regrade")
    auth.logout()
    db.expire_all()
    row = db.get(Submission, first.id)
    assert row is not None
    row.status, row.score, row.max_score = "done", 5.0, 10.0  # the worker finished it
    db.commit()
    auth.login(world.alice.email)
    home = client.get("/").get_data(as_text=True)
    assert f"Your submission {first.id} to MyTorch CNN was regraded" in home
    client.get(f"/submissions/{first.id}")
    assert "was regraded" not in client.get("/").get_data(as_text=True)


def test_students_choose_the_submission_that_counts(
        client: FlaskClient, auth: AuthActions, make: Factory, world: World,
        db: Session) -> None:
    first, second = graded_pair(make, world)
    auth.login(world.alice.email)
    page = f"/assignments/{world.assignment.id}"
    refused = post(client, page, f"/submissions/{first.id}/choose")
    assert "counts your best submission" in client.get(page).get_data(as_text=True) or refused
    world.assignment.students_choose = True
    db.commit()
    text = client.get(page).get_data(as_text=True)
    assert f"Make submission {first.id} count" in text
    post(client, page, f"/submissions/{first.id}/choose")
    text = client.get(page).get_data(as_text=True)
    assert f"Make submission {second.id} count" in text
    auth.logout()
    auth.login(world.staff.email)
    body = client.get(f"/staff/assignments/{world.assignment.id}/gradebook.csv")
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(body.get_data(as_text=True)))}
    assert rows["alice@example.edu"]["mytorch-cnn submission"] == str(first.id)


def test_code_view_with_line_comments(client: FlaskClient, auth: AuthActions, make: Factory,
                                      world: World, app: Flask, handin: bytes) -> None:
    sha, _ = services_of(app).archives.put(io.BytesIO(handin), 1 << 24)
    done = make.graded(world.alice, world.assignment, [gs_test(1, "Multiple choice", 5, 5)],
                       archive_sha256=sha, archive_size=len(handin))
    auth.login(world.staff.email)
    url = f"/staff/submissions/{done.id}/code"
    page = client.get(url + "?path=mytorch/conv.py&line=3").get_data(as_text=True)
    assert "mytorch/conv.py" in page and 'class="k"' in page  # highlighted by Pygments
    assert 'value="3"' in page
    response = post(client, url, url, path="mytorch/conv.py", line="3", body="Why a loop here?")
    assert response.status_code == 302  # type: ignore[attr-defined]
    wrong = post(client, url, url, path="mytorch/conv.py", line="99999", body="x")
    assert wrong.status_code == 400  # type: ignore[attr-defined]
    auth.logout()
    auth.login(world.alice.email)
    mine = client.get(f"/submissions/{done.id}/code").get_data(as_text=True)
    assert "Why a loop here?" in mine and "Comment on line" not in mine
    assert "1 comment from staff" in client.get(f"/submissions/{done.id}").get_data(as_text=True)


def test_live_progress_of_a_running_test(client: FlaskClient, auth: AuthActions,
                                         make: Factory, world: World, db: Session) -> None:
    from store.models import utcnow

    running = make.submission(world.alice, world.assignment, status="running", attempt=1,
                              started_at=utcnow())
    progress.write(db, running.id, 1, {"test": 3, "tests": 9, "name": "Multiple choice",
                                       "epoch": 2, "epochs": 3,
                                       "curves": {"train_loss": [2.0, 1.0],
                                                  "held_out_accuracy": [0.5, None]}})
    db.commit()
    auth.login(world.alice.email)
    state = client.get(f"/submissions/{running.id}/status.json").get_json()
    assert state["progress"]["test"] == 3 and state["progress"]["epoch"] == 2
    image = client.get(state["progress"]["curve_url"])
    assert image.mimetype == "image/svg+xml" and "epoch" in image.get_data(as_text=True)
    page = client.get(f"/submissions/{running.id}").get_data(as_text=True)
    assert "Test 3 of 9: Multiple choice, epoch 2 of 3" in page and 'aria-live="polite"' in page
    progress.write(db, running.id, 1, {"test": 4, "tests": 9, "name": "Hidden test",
                                       "curves": {"train_loss": [1.0]}})
    db.commit()
    hidden = client.get(f"/submissions/{running.id}/status.json").get_json()["progress"]
    assert "curve_url" not in hidden  # not a test of this assignment the student may see


def test_download_all_and_similarity(client: FlaskClient, auth: AuthActions, make: Factory,
                                     world: World, app: Flask, handin: bytes) -> None:
    import zipfile

    archives = services_of(app).archives
    sha, _ = archives.put(io.BytesIO(handin), 1 << 24)
    for student in (world.alice, world.bob):  # the same code twice: a copied handin
        make.graded(student, world.assignment, [gs_test(1, "Multiple choice", 5, 5)],
                    archive_sha256=sha, archive_size=len(handin))
    auth.login(world.staff.email)
    base = f"/staff/assignments/{world.assignment.id}"
    response = client.get(f"{base}/submissions.zip?which=best")
    content = response.get_data()
    response.close()  # the spooled file behind it
    bundle = zipfile.ZipFile(io.BytesIO(content))
    names = sorted(bundle.namelist())
    assert "manifest.csv" in names and len(names) == 3
    assert names[0].startswith("alice@example.edu/") and bundle.read(names[0]) == handin
    assert "alice@example.edu" in bundle.read("manifest.csv").decode()
    assert client.get(f"{base}/submissions.zip?which=all").status_code == 400
    report = client.get(f"{base}/similarity?threshold=0.9").get_data(as_text=True)
    assert "alice@example.edu's code" in report and f"{world.bob.email}'s code" in report
    assert "100 %" in report
    assert "the reference solution" in report  # both handins are the solution itself


def test_passed_tests_show_their_margin(client: FlaskClient, auth: AuthActions,
                                        make: Factory, world: World) -> None:
    margin = "Held-out accuracy 91.2% (credit: ≥90% → 100%)."
    done = make.graded(world.alice, world.assignment, [
        gs_test(1, "CNN accuracy", 5, 5, output=margin),
        gs_test(2, "Plain", 5, 5, output="Passed.")])
    auth.login(world.alice.email)
    page = client.get(f"/submissions/{done.id}").get_data(as_text=True)
    assert margin.replace(">", "&gt;") in page
    assert "<pre>Passed.</pre>" not in page
