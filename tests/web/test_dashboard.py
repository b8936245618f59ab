"""web/dashboard.py and the dashboard pages of web/staff.py: charts, live panel, the
per-student table, CSV export, extensions, and who may see them."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from store.heartbeats import WorkerInfo, beat
from store.models import Assignment, Extension
from store.queries import gradebook
from tests.web.conftest import services_of
from tests.web.factories import AuthActions, Factory, World, gs_test
from web.dashboard import hourly_counts, live, pass_rates, per_hour_chart, window

SVG = "{http://www.w3.org/2000/svg}"
DUE = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)


def results(*passed: bool) -> list[dict[str, object]]:
    names = ["forward", "backward", "hidden check"]
    return [gs_test(i + 1, names[i], 5 if ok else 0, 5) for i, ok in enumerate(passed)]


@pytest.fixture
def graded(make: Factory, world: World) -> World:
    """Alice passes 1-2 then 1-3 (best); bob passes only 1; carol has not submitted."""
    make.graded(world.alice, world.assignment, results(True, True, False))
    make.graded(world.alice, world.assignment, results(True, True, True))
    make.graded(world.bob, world.assignment, results(True, False, False), late_days=2)
    carol = make.user(email="carol@example.edu", name="Carol")
    make.enroll(carol, world.course)
    return world


def test_pass_rates_use_each_best_submission_most_failed_first(db: Session,
                                                               graded: World) -> None:
    rates = pass_rates(db, gradebook(db, graded.assignment.id))
    assert [(r.label, r.passed, r.total) for r in rates] == [
        ("2 backward", 1, 2), ("3 hidden check", 1, 2), ("1 forward", 2, 2)]


def test_window_spans_48_hours_before_due_and_the_late_window() -> None:
    on_time = window(Assignment(due_at=DUE), DUE)
    assert (on_time.start, on_time.end, on_time.hours) == (DUE - timedelta(hours=48),
                                                           DUE + timedelta(hours=24), 72)
    week = window(Assignment(due_at=DUE, late_due_at=DUE + timedelta(days=7)), DUE)
    assert week.end == DUE + timedelta(hours=72)


def test_window_is_the_last_48_hours_while_the_due_date_is_far() -> None:
    now = DUE - timedelta(days=5, minutes=20)
    early = window(Assignment(due_at=DUE), now)
    assert (early.start, early.end, early.due) == (
        DUE - timedelta(days=7), DUE - timedelta(days=5), None)


def test_hourly_counts(db: Session, make: Factory, world: World) -> None:
    world.assignment.due_at = DUE
    db.commit()
    for minutes in (-61, -59, -1, 0, 30, 60 * 24 + 1, -60 * 49):
        make.submission(world.alice, world.assignment, created_at=DUE + timedelta(minutes=minutes))
    counts = hourly_counts(db, world.assignment.id, window(world.assignment, DUE))
    assert len(counts) == 72 and sum(counts) == 5  # the last two are outside the window
    assert counts[46:49] == [1, 2, 2]


def test_live_counts_queue_and_workers(db: Session, make: Factory, world: World) -> None:
    now = datetime.now(UTC)
    other = make.assignment(world.course, slug="other", title="Other")
    make.submission(world.alice, world.assignment, created_at=now - timedelta(seconds=90))
    make.submission(world.bob, world.assignment, created_at=now - timedelta(hours=3),
                    enqueued_at=now - timedelta(seconds=30))  # regraded: waits since requeued
    make.submission(world.bob, world.assignment, status="running", worker="w1",
                    lease_until=now + timedelta(minutes=5))
    make.submission(world.bob, other, status="running", worker="w2",
                    lease_until=now - timedelta(minutes=5))  # lease expired: not active
    make.graded(world.alice, world.assignment, results(True), finished_at=now, worker="w3")
    make.submission(world.alice, world.assignment, status="error", finished_at=now)
    state = live(db, world.assignment, now)
    assert state["assignment"] == {"queued": 2, "running": 1, "done_last_hour": 1,
                                   "error_last_hour": 1, "oldest_queued_s": 90}
    assert (state["service"]["running"], state["service"]["workers_active"]) == (2, 1)
    assert state["service"]["workers_last_hour"] == 1


@pytest.fixture
def staff(auth: AuthActions, graded: World) -> World:
    auth.login(graded.staff.email)
    return graded


def test_dashboard_draws_three_charts_with_bars(client: FlaskClient, staff: World) -> None:
    page = client.get(f"/staff/assignments/{staff.assignment.id}").get_data(as_text=True)
    svgs = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(svgs) == 3
    roots = [ET.fromstring(svg) for svg in svgs]
    titles = [root.findtext(f"{SVG}title") for root in roots]
    assert titles == ["Best score per student", "Submissions per hour", "Pass rate per test"]
    histogram = [r for r in roots[0].iter(f"{SVG}rect") if "bar" in r.get("class", "")]
    assert sum(float(r.get("height", "0")) > 0 for r in histogram) == 2  # 15 and 5 points
    assert "best</strong> graded submission" in page


def test_table_search_and_sort_without_javascript(client: FlaskClient, staff: World) -> None:
    url = f"/staff/assignments/{staff.assignment.id}"
    page = client.get(url + "?sort=best&dir=desc").get_data(as_text=True)
    table = page[page.index('id="gradebook"'):page.index("</table>", page.index('id="gradebook"'))]
    order = re.findall(r"([a-z0-9]+)@example\.edu</a>", table)
    assert order == ["alice", staff.bob.email.split("@")[0], "carol"]  # 15, 5, none
    assert 'aria-sort="descending"' in table
    found = client.get(url + "?q=CAROL").get_data(as_text=True)
    assert "carol@example.edu</a>" in found and "alice@example.edu</a>" not in found
    assert f'/staff/assignments/{staff.assignment.id}/students/{staff.bob.id}' in page


def test_live_json(client: FlaskClient, staff: World) -> None:
    state = client.get(f"/staff/assignments/{staff.assignment.id}/live.json").get_json()
    assert state["assignment"]["queued"] == 0
    assert set(state["service"]) >= {"queued", "running", "workers_active"}
    assert state["drain"] == {"queue": "cpu", "pending": 0, "seconds": 0,
                              "summary": "the cpu queue is empty"}


def test_staff_see_how_long_the_queue_takes_to_drain(
        client: FlaskClient, staff: World, db: Session, make: Factory) -> None:
    url = f"/staff/assignments/{staff.assignment.id}/live.json"
    for _ in range(12):
        make.submission(staff.bob, staff.assignment)
    assert client.get(url).get_json()["drain"]["summary"] == (
        "12 waiting or running in the cpu queue; no grader is running, so no estimate")
    beat(db, CPU, datetime.now(UTC))
    assert client.get(url).get_json()["drain"]["summary"] == (
        "12 waiting or running in the cpu queue; no grading has finished yet, so no estimate")
    finished = datetime.now(UTC) - timedelta(hours=1)
    make.submission(staff.bob, staff.assignment, status="done", finished_at=finished,
                    started_at=finished - timedelta(seconds=30))  # one grader, 30 s each
    drain = client.get(url).get_json()["drain"]
    assert (drain["pending"], drain["seconds"]) == (12, 360)
    assert drain["summary"] == ("12 waiting or running in the cpu queue, about 6 min to drain "
                                "at 2 gradings a minute")
    page = client.get(f"/staff/assignments/{staff.assignment.id}").get_data(as_text=True)
    assert 'data-live="drain.seconds" data-format="duration">360 s</dd>' in page


CPU = WorkerInfo(worker="cpu.11@host-a", queues="cpu", sandbox="docker", host="host-a", pid=11)
GPU = WorkerInfo(worker="gpu.22@host-b", queues="gpu", gpus="0", host="host-b", pid=22)


def test_live_json_shows_the_workers_alive_by_queue_and_what_they_grade(
        client: FlaskClient, staff: World, db: Session, make: Factory) -> None:
    moment = datetime.now(UTC)
    grading = make.submission(staff.alice, staff.assignment, status="running", worker="x")
    beat(db, CPU, moment - timedelta(seconds=4), submission_id=grading.id)
    beat(db, GPU, moment - timedelta(seconds=20))
    beat(db, WorkerInfo(worker="cpu.33@gone", queues="cpu"), moment - timedelta(minutes=5))
    state = client.get(f"/staff/assignments/{staff.assignment.id}/live.json").get_json()
    workers = state["workers"]
    assert (workers["alive"], workers["by_queue"], workers["warning"]) == (
        2, {"cpu": 1, "gpu": 1}, None)
    assert workers["summary"].startswith("2 workers alive (cpu: 1, gpu: 1), last seen ")
    assert [(w["worker"], w["submission_id"]) for w in workers["workers"]] == [
        (CPU.worker, grading.id), (GPU.worker, None)]
    page = client.get(f"/staff/assignments/{staff.assignment.id}").get_data(as_text=True)
    table = page[page.index('id="workers"'):page.index("</table>", page.index('id="workers"'))]
    assert CPU.worker in table and GPU.worker in table and "cpu.33@gone" not in table
    assert f'href="/staff/submissions/{grading.id}">#{grading.id}</a>' in table
    assert re.search(r'id="workers-warning"[^>]*hidden', page)


def test_a_waiting_queue_with_no_worker_alive_is_an_alert(
        client: FlaskClient, staff: World, db: Session, make: Factory) -> None:
    for _ in range(12):
        make.submission(staff.bob, staff.assignment)
    beat(db, CPU, datetime.now(UTC) - timedelta(minutes=3))  # died three minutes ago
    warning = "No worker has reported in the last 60 s while 12 submissions wait."
    state = client.get(f"/staff/assignments/{staff.assignment.id}/live.json").get_json()
    assert (state["workers"]["alive"], state["workers"]["warning"]) == (0, warning)
    assert re.match(r"0 workers alive, last seen 3 min ago$", state["workers"]["summary"])
    page = client.get(f"/staff/assignments/{staff.assignment.id}").get_data(as_text=True)
    alert = re.search(r'<p class="alert" role="alert" id="workers-warning"([^>]*)>([^<]*)',
                      page)
    assert alert is not None and "hidden" not in alert.group(1) and alert.group(2) == warning
    index = client.get("/staff/").get_data(as_text=True)
    assert "Workers: 0 workers alive, last seen 3 min ago." in index
    assert f'role="alert" id="workers-warning">{warning}</p>' in index


def test_the_alive_window_follows_a_long_heartbeat_interval(
        app: Flask, client: FlaskClient, staff: World, db: Session, make: Factory) -> None:
    """Beating every 60 s, a worker silent for 3 min has missed three beats, not six."""
    services = services_of(app)
    services.settings = dataclasses.replace(services.settings, heartbeat_interval=60.0)
    make.submission(staff.bob, staff.assignment)
    beat(db, CPU, datetime.now(UTC) - timedelta(minutes=3))
    state = client.get(f"/staff/assignments/{staff.assignment.id}/live.json").get_json()
    assert (state["workers"]["alive"], state["workers"]["warning"]) == (1, None)
    beat(db, CPU, datetime.now(UTC) - timedelta(minutes=7))
    state = client.get(f"/staff/assignments/{staff.assignment.id}/live.json").get_json()
    assert state["workers"]["warning"] == (
        "No worker has reported in the last 360 s while 1 submission waits.")
    assert "Workers: 0 workers alive, last seen 7 min ago." in client.get(
        "/staff/").get_data(as_text=True)


def test_the_staff_index_says_how_many_workers_are_alive(
        client: FlaskClient, staff: World, db: Session) -> None:
    assert "Workers: 0 workers alive, none has ever reported." in client.get(
        "/staff/").get_data(as_text=True)
    beat(db, CPU, datetime.now(UTC))
    index = client.get("/staff/").get_data(as_text=True)
    assert re.search(r"Workers: 1 worker alive \(cpu: 1\), last seen \d s ago\.", index)
    assert 'id="workers-warning"' not in index


def test_csv_export(client: FlaskClient, staff: World, db: Session) -> None:
    db.add(Extension(assignment_id=staff.assignment.id, user_id=staff.bob.id,
                     due_at=datetime(2030, 1, 2, 3, 4, tzinfo=UTC)))
    db.commit()
    response = client.get(f"/staff/assignments/{staff.assignment.id}/gradebook.csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == \
        'attachment; filename="dl101-mytorch-cnn-gradebook.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["email"] for r in rows] == ["alice@example.edu", "carol@example.edu",
                                          staff.bob.email]  # by e-mail: student2@...
    slug = "mytorch-cnn"
    assert (rows[2][slug], rows[2][f"{slug} max"], rows[2][f"{slug} late days"],
            rows[2][f"{slug} extension due"]) == ("5", "100", "2", "2030-01-02T03:04:00Z")
    assert rows[0][f"{slug} attempts"] == "2" and rows[1][slug] == ""


def test_grant_extension_through_the_form(client: FlaskClient, auth: AuthActions,
                                          staff: World, db: Session) -> None:
    url = f"/staff/assignments/{staff.assignment.id}/extensions"
    due = staff.assignment.due_at
    assert due is not None
    bad = client.post(url, data={"csrf_token": auth.token(), "email": "alice@example.edu",
                                 "due_at": (due - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
                                 "reason": "kept <b>"})
    text = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "an extension can only give more time" in text
    assert 'value="kept &lt;b&gt;"' in text  # the form keeps what was typed
    new_due = (due + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    good = client.post(url, data={"csrf_token": auth.token(), "email": "alice@example.edu",
                                  "due_at": new_due, "reason": "illness"}, follow_redirects=True)
    assert "alice@example.edu now has until" in good.get_data(as_text=True)
    student = client.get(f"/staff/assignments/{staff.assignment.id}/students/{staff.alice.id}")
    assert "illness" in student.get_data(as_text=True)
    assert f'value="{new_due}"' in student.get_data(as_text=True)
    revoke = f"/staff/assignments/{staff.assignment.id}/extensions/{staff.alice.id}/revoke"
    done = client.post(revoke, data={"csrf_token": auth.token()}, follow_redirects=True)
    assert "The extension is revoked" in done.get_data(as_text=True)
    assert db.query(Extension).count() == 0


DASHBOARD_URLS = ["", "/live.json", "/gradebook.csv", "/students/{alice}"]


@pytest.mark.parametrize("suffix", DASHBOARD_URLS)
def test_students_get_403(client: FlaskClient, auth: AuthActions, graded: World,
                          suffix: str) -> None:
    auth.login(graded.alice.email)
    url = f"/staff/assignments/{graded.assignment.id}" + suffix.format(alice=graded.alice.id)
    assert client.get(url).status_code == 403
    post = client.post(f"/staff/assignments/{graded.assignment.id}/extensions",
                       data={"csrf_token": auth.token(), "email": graded.alice.email,
                             "due_at": "2099-01-01T00:00"})
    assert post.status_code == 403


@pytest.mark.parametrize("suffix", DASHBOARD_URLS)
def test_other_courses_staff_get_404(client: FlaskClient, auth: AuthActions, make: Factory,
                                     graded: World, suffix: str, db: Session) -> None:
    elsewhere = make.user("staff")
    make.enroll(elsewhere, make.course("cv200"))
    auth.login(elsewhere.email)
    base = f"/staff/assignments/{graded.assignment.id}"
    assert client.get(base + suffix.format(alice=graded.alice.id)).status_code == 404
    token = auth.token()
    for action in ("/regrade", "/extensions", f"/extensions/{graded.alice.id}/revoke"):
        data = {"csrf_token": token, "scope": "all", "confirm": "yes",
                "email": graded.alice.email, "due_at": "2099-01-01T00:00"}
        assert client.post(base + action, data=data).status_code == 404
    assert db.query(Extension).count() == 0


def test_student_page_only_for_the_courses_people(client: FlaskClient, make: Factory,
                                                  staff: World) -> None:
    stranger = make.user(email="stranger@example.edu")
    base = f"/staff/assignments/{staff.assignment.id}/students"
    assert client.get(f"{base}/{stranger.id}").status_code == 404
    assert client.get(f"{base}/99999").status_code == 404
    page = client.get(f"{base}/{staff.alice.id}").get_data(as_text=True)
    assert page.count("/staff/submissions/") == 2  # her two submissions


def test_per_hour_chart_marks_the_due_date_and_colours_late_hours() -> None:
    span = window(Assignment(due_at=DUE), DUE)
    counts = [0] * 47 + [3, 4] + [0] * 23
    root = ET.fromstring(per_hour_chart(counts, span))
    bars = [r for r in root.iter(f"{SVG}rect")]
    assert len(bars) == 72
    assert [r.get("class") for r in bars[47:49]] == ["bar", "bar late"]  # hour -1, hour 0
    assert bars[48].findtext(f"{SVG}title") == \
        "Tue 10 Mar 23:00–00:00 UTC: 4 submissions (+0 h from the due date)"
    [marker] = [x for x in root.iter(f"{SVG}line") if x.get("class") == "marker"]
    assert marker.findtext(f"{SVG}title") == "due Tue 10 Mar 23:00 UTC"
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    assert labels[:2] == ["08 Mar 23:00", "09 Mar 11:00"]  # dates on the time axis
    paris = ET.fromstring(per_hour_chart(counts, span, "Europe/Paris"))
    assert "due Wed 11 Mar 00:00 CET" in ET.tostring(paris, encoding="unicode")
