"""Student pages of web/student.py: the list, history, results and status.json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient

from store.heartbeats import WorkerInfo, beat
from tests.web.factories import AuthActions, Factory, World, gs_test
from web.waiting import Wait


def test_assignment_list_shows_deadline_and_best_score(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World
) -> None:
    world.assignment.due_at = datetime.now(UTC) + timedelta(days=3, hours=2)
    make.db.commit()
    make.graded(world.alice, world.assignment, [gs_test(1, "t", 40, 100)])
    make.graded(world.alice, world.assignment, [gs_test(1, "t", 70, 100)])
    make.graded(world.bob, world.assignment, [gs_test(1, "t", 100, 100)])
    auth.login(world.alice.email)
    page = client.get("/").get_data(as_text=True)
    assert "due in 3 days" in page
    assert "UTC" in page
    assert "70 / 100" in page and "100 / 100" not in page


def test_unreleased_assignments_are_not_listed(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World
) -> None:
    make.assignment(world.course, slug="next", title="Next week",
                    release_at=datetime.now(UTC) + timedelta(days=2))
    auth.login(world.alice.email)
    assert "Next week" not in client.get("/").get_data(as_text=True)


def test_history_lists_own_submissions_only(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World
) -> None:
    mine = make.submission(world.alice, world.assignment, filename="mine.tar")
    make.submission(world.bob, world.assignment, filename="bobs.tar")
    auth.login(world.alice.email)
    page = client.get(f"/assignments/{world.assignment.id}").get_data(as_text=True)
    assert f"/submissions/{mine.id}" in page and "mine.tar" in page
    assert "bobs.tar" not in page


def test_other_students_submission_is_404(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World
) -> None:
    theirs = make.graded(world.bob, world.assignment, [gs_test(1, "t", 1, 1)])
    auth.login(world.alice.email)
    for url in (f"/submissions/{theirs.id}", f"/submissions/{theirs.id}/status.json",
                f"/staff/submissions/{theirs.id}"):
        assert client.get(url).status_code in (403, 404), url
    assert client.get(f"/submissions/{theirs.id}").status_code == 404
    assert client.get(f"/submissions/{theirs.id}/status.json").status_code == 404


def test_status_json_follows_the_queue(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World
) -> None:
    base = datetime.now(UTC)
    make.submission(world.bob, world.assignment, created_at=base - timedelta(minutes=3))
    make.submission(world.bob, world.assignment, created_at=base - timedelta(minutes=2))
    mine = make.submission(world.alice, world.assignment, created_at=base - timedelta(minutes=1))
    auth.login(world.alice.email)
    state = client.get(f"/submissions/{mine.id}/status.json").get_json()
    assert state == {"id": mine.id, "status": "queued", "position": 3, "wait_s": None,
                     "message": "queued — position 3 in queue. No grader is running right now: "
                                "your upload is stored safely and will be graded as soon as "
                                "one starts."}
    page = client.get(f"/submissions/{mine.id}").get_data(as_text=True)
    assert "queued — position 3 in queue" in page
    assert "results.js" in page and 'http-equiv="refresh"' in page

    mine.status = "running"
    make.db.commit()
    assert client.get(f"/submissions/{mine.id}/status.json").get_json()["message"] == "running"


def test_the_wait_is_estimated_from_recent_gradings_and_the_graders_alive(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World
) -> None:
    base = datetime.now(UTC)
    for minutes, seconds in ((30, 20.0), (29, 40.0), (28, 100.0)):  # median 40 s
        finished = base - timedelta(minutes=minutes)
        make.submission(world.bob, world.assignment, status="done", finished_at=finished,
                        started_at=finished - timedelta(seconds=seconds))
    gpu = make.assignment(world.course, slug="vit", title="ViT", queue="gpu")
    make.submission(world.bob, gpu, created_at=base - timedelta(minutes=9))  # another queue
    carol = make.user(email="carol@example.edu")  # one turn each: both go before alice
    for minutes, student in ((3, world.bob), (2, carol)):
        make.submission(student, world.assignment, created_at=base - timedelta(minutes=minutes))
    mine = make.submission(world.alice, world.assignment, created_at=base - timedelta(minutes=1))
    beat(make.db, WorkerInfo("cpu.1@a", queues="cpu"), base)
    beat(make.db, WorkerInfo("gpu.2@b", queues="gpu", gpus="0"), base)
    auth.login(world.alice.email)
    state = client.get(f"/submissions/{mine.id}/status.json").get_json()
    assert (state["position"], state["wait_s"]) == (3, 120)  # 3 ahead of one grader, 40 s each
    assert state["message"] == ("queued — position 3 in queue, about 2 min to go (1 grader, "
                                "about 40 s per grading)")
    beat(make.db, WorkerInfo("cpu-gpu.3@c", queues="cpu,gpu"), base)
    state = client.get(f"/submissions/{mine.id}/status.json").get_json()
    assert state["wait_s"] == 60 and "(2 graders, about 40 s per grading)" in state["message"]
    page = client.get(f"/submissions/{mine.id}").get_data(as_text=True)
    assert "about 1 min to go (2 graders" in page
    beat(make.db, WorkerInfo("cpu-gpu.3@c", queues="cpu,gpu", slots=3), base)  # concurrency 3
    state = client.get(f"/submissions/{mine.id}/status.json").get_json()
    assert state["wait_s"] == 30 and "(4 graders, about 40 s per grading)" in state["message"]


def test_in_a_rush_the_wait_follows_the_pace_the_queue_really_keeps(
    client: FlaskClient, auth: AuthActions, make: Factory, world: World
) -> None:
    """31 gradings of 40 s each finished over the last minute: 30 a minute, far more than
    one grader x 1/40 s would say (the model leaves out how many ran at once)."""
    base = datetime.now(UTC)
    dave = make.user(email="dave@example.edu")  # graded a lot lately, waits for nothing now
    for i in range(31):
        finished = base - timedelta(seconds=60 - 2 * i)
        make.submission(dave, world.assignment, status="done", finished_at=finished,
                        started_at=finished - timedelta(seconds=40))
    carol = make.user(email="carol@example.edu")  # one turn each: both go before alice
    for minutes, student in ((3, world.bob), (2, carol)):
        make.submission(student, world.assignment, created_at=base - timedelta(minutes=minutes))
    mine = make.submission(world.alice, world.assignment, created_at=base - timedelta(minutes=1))
    beat(make.db, WorkerInfo("cpu.1@a", queues="cpu"), base)
    auth.login(world.alice.email)
    state = client.get(f"/submissions/{mine.id}/status.json").get_json()
    assert (state["position"], state["wait_s"]) == (3, 6)  # 3 / (30 a minute)
    assert state["message"] == ("queued — position 3 in queue, about 6 s to go (1 grader, "
                                "grading about 30 a minute)")


def test_a_wait_without_recent_gradings_gives_the_position_only() -> None:
    assert Wait(4, 2, None).message() == "queued — position 4 in queue"
    assert Wait(4, 2, None).seconds is None and Wait(4, 0, 30.0).seconds is None
    assert Wait(1, 1, 0.2).message() == ("queued — position 1 in queue, about 1 s to go "
                                         "(1 grader, grading about 300 a minute)")
    assert Wait(10, 1, 60.0, observed_per_s=0.05).seconds == 200  # the rush is faster
    assert Wait(10, 1, 60.0, observed_per_s=0.01).seconds == 600  # quiet: the model


def test_status_json_when_done(client: FlaskClient, auth: AuthActions, make: Factory,
                               world: World) -> None:
    done = make.graded(world.alice, world.assignment,
                       [gs_test(1, "a", 5, 5), gs_test(2, "b", 0, 5, "hidden")])
    auth.login(world.alice.email)
    state = client.get(f"/submissions/{done.id}/status.json").get_json()
    assert (state["status"], state["score"], state["max_score"]) == ("done", 5, 5)
    page = client.get(f"/submissions/{done.id}").get_data(as_text=True)
    assert "results.js" not in page  # nothing left to follow


def test_error_shows_the_sentence(client: FlaskClient, auth: AuthActions, make: Factory,
                                  world: World) -> None:
    failed = make.submission(world.alice, world.assignment, status="error", attempt=3,
                             error="Grading failed 3 times; course staff have been told.",
                             staff_detail="Traceback: secret worker path")
    auth.login(world.alice.email)
    page = client.get(f"/submissions/{failed.id}").get_data(as_text=True)
    assert "Grading failed 3 times; course staff have been told." in page
    assert "secret worker path" not in page
    state = client.get(f"/submissions/{failed.id}/status.json").get_json()
    assert state["error"] == "Grading failed 3 times; course staff have been told."


def test_upload_page_works_without_javascript(client: FlaskClient, auth: AuthActions,
                                              world: World) -> None:
    auth.login(world.alice.email)
    page = client.get(f"/assignments/{world.assignment.id}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file" name="file"' in page
    assert "upload.js" in page


def test_training_curves_are_drawn_on_the_results_page(
        client: FlaskClient, auth: AuthActions, make: Factory, world: World) -> None:
    curves = {"train_loss": [2.3, 1.1, None], "held_out_accuracy": [0.4, 0.8, 0.9]}
    test = {**gs_test(1, "CNN <accuracy>", 5, 5), "extra_data": {"curves": curves}}
    broken = {**gs_test(2, "b", 5, 5), "extra_data": {"curves": "not a mapping"}}
    done = make.graded(world.alice, world.assignment, [test, broken])
    auth.login(world.alice.email)
    page = client.get(f"/submissions/{done.id}").get_data(as_text=True)
    url = f"/submissions/{done.id}/tests/1/curves.svg"
    assert page.count("curves.svg") == 1 and f'src="{url}"' in page
    assert "held-out accuracy last 90.0%" in page  # the image's alt text
    assert "<td class=\"num\">1.1</td>" in page and "<td class=\"num\">—</td>" in page
    image = client.get(url)
    assert image.mimetype == "image/svg+xml"
    svg = image.get_data(as_text=True)
    assert "training loss" in svg and "held-out accuracy" in svg and "epoch" in svg
    assert "script" not in image.headers["Content-Security-Policy"]
    assert client.get(f"/submissions/{done.id}/tests/2/curves.svg").status_code == 404
