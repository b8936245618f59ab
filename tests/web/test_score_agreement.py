"""Every surface shows one score (issue 16): a late handin graded by the real worker, then
staff change the late penalty and adjust the score; the student's pages, the API (as the
student and as staff), the assignment's gradebook and the course's gradebook (pages, CSV
and JSON) must agree on every score after each change.

The tiny assignment's two tests are both visible once submissions close, and they have
closed, so the student's view and the staff view count the same tests."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from store.models import Assignment, Submission
from tasks.jobs import GradingJob
from tests.services import make_settings, tar_gz
from tests.tiny_assignment import write_tiny
from tests.web.conftest import services_of
from tests.web.factories import AuthActions, Factory, World, csrf_token, now


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def number(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def page_score(html: str, pattern: str) -> float:
    found = re.search(pattern, html)
    assert found, f"no score matching {pattern!r} on the page"
    return number(found.group(1))


def csv_rows(text: str) -> dict[str, dict[str, str]]:
    return {row["email"]: row for row in csv.DictReader(io.StringIO(text))}


class Surfaces:
    """Reads alice's score on the tiny assignment from everywhere it is shown."""

    def __init__(self, client: FlaskClient, auth: AuthActions, world: World,
                 assignment: Assignment, submission: Submission, tokens: dict[str, str]) -> None:
        self.client, self.auth, self.world = client, auth, world
        self.assignment, self.submission, self.tokens = assignment, submission, tokens

    def student(self) -> dict[str, float]:
        self.auth.login(self.world.alice.email)
        sid, aid = self.submission.id, self.assignment.id
        get = self.client.get
        found = {
            "student submission page": page_score(
                get(f"/submissions/{sid}").get_data(as_text=True),
                r'<strong id="score">([-\d.]+) / '),
            "student assignment page": page_score(
                get(f"/assignments/{aid}").get_data(as_text=True),
                r'<td class="num">([-\d.]+) / [-\d.]+</td>'),
            "student status.json": float(get(f"/submissions/{sid}/status.json")
                                         .get_json()["score"]),
        }
        self.auth.logout()
        return found

    def staff(self) -> dict[str, float]:
        self.auth.login(self.world.staff.email)
        sid, aid, course = self.submission.id, self.assignment.id, self.world.course.slug
        get = self.client.get
        found = {
            "staff submission page": page_score(
                get(f"/staff/submissions/{sid}").get_data(as_text=True),
                r'Score: <strong>([-\d.]+) / '),
            "staff dashboard (best)": page_score(
                get(f"/staff/assignments/{aid}").get_data(as_text=True),
                rf'submissions/{sid}">([-\d.]+) / '),
            "assignment gradebook.csv": number(csv_rows(get(
                f"/staff/assignments/{aid}/gradebook.csv").get_data(as_text=True))[
                    "alice@example.edu"]["tiny-hw"]),
            "course gradebook.csv": number(csv_rows(get(
                f"/staff/courses/{course}/gradebook.csv").get_data(as_text=True))[
                    "alice@example.edu"]["tiny-hw"]),
        }
        self.auth.logout()
        return found

    def api(self) -> dict[str, float]:
        sid, slug, course = self.submission.id, self.assignment.slug, self.world.course.slug
        get = self.client.get
        student = get(f"/api/v1/submissions/{sid}", headers=bearer(self.tokens["alice"]))
        staff = get(f"/api/v1/submissions/{sid}", headers=bearer(self.tokens["staff"]))
        scores = get(f"/api/v1/assignments/{slug}/scores", headers=bearer(self.tokens["staff"]))
        sheet = get(f"/api/v1/courses/{course}/gradebook", headers=bearer(self.tokens["staff"]))
        best = {s["email"]: s for s in scores.get_json()["students"]}["alice@example.edu"]
        cell = {s["email"]: s for s in sheet.get_json()["students"]}["alice@example.edu"]
        return {
            "API submission (student)": float(student.get_json()["score"]),
            "API results.json (student)": float(student.get_json()["results"]["score"]),
            "API submission (staff)": float(staff.get_json()["score"]),
            "API results.json (staff)": float(staff.get_json()["results"]["score"]),
            "API scores (staff)": float(best["best_score"]),
            "API course gradebook (staff)": float(cell["scores"][slug]["total"]),
        }

    def every(self) -> dict[str, float]:
        return {**self.student(), **self.staff(), **self.api()}


@pytest.fixture
def late_graded(app: Flask, client: FlaskClient, auth: AuthActions, make: Factory,
                world: World, db: Session, tmp_path: Path, any_database_url: str) -> Surfaces:
    """Alice's correct tiny handin, two days late at 10 % a day, graded by the worker."""
    folder = write_tiny(tmp_path / "tiny-hw")
    closed = now() - timedelta(days=1)
    assignment = make.assignment(world.course, slug="tiny-hw", title="Tiny homework",
                                 folder=str(folder), due_at=closed - timedelta(days=3),
                                 late_due_at=closed, late_penalty_per_day=0.1)
    archive = tar_gz(folder / "solution")
    sha, size = services_of(app).archives.put(io.BytesIO(archive), 1 << 20)
    submission = make.submission(world.alice, assignment, archive_sha256=sha,
                                 archive_size=size, late_days=2)
    settings = make_settings(tmp_path / "data", any_database_url)
    job = GradingJob(settings, services_of(app).db_factory, worker="agreement")
    assert job.run(submission.id) == "done"
    db.expire_all()
    tokens = {"alice": make.token(world.alice), "staff": make.token(world.staff)}
    return Surfaces(client, auth, world, assignment, submission, tokens)


def change_settings(surfaces: Surfaces, **fields: str) -> None:
    """Staff save the assignment's settings form with ``fields`` changed."""
    client, auth = surfaces.client, surfaces.auth
    auth.login(surfaces.world.staff.email)
    page = f"/staff/assignments/{surfaces.assignment.id}/settings"
    html = client.get(page).get_data(as_text=True)
    form = {name: value for name, value in re.findall(
        r'<input[^>]*name="([a-z_]+)"[^>]*value="([^"]*)"', html)}
    form.update(fields)
    form["csrf_token"] = csrf_token(html)
    response = client.post(page, data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    auth.logout()


def adjust(surfaces: Surfaces, points: str) -> None:
    client, auth = surfaces.client, surfaces.auth
    auth.login(surfaces.world.staff.email)
    page = f"/staff/submissions/{surfaces.submission.id}"
    token = csrf_token(client.get(page).get_data(as_text=True))
    response = client.post(f"{page}/adjustments",
                           data={"points": points, "comment": "Our test was wrong",
                                 "csrf_token": token})
    assert response.status_code == 302
    auth.logout()


def assert_agree(surfaces: Surfaces, expected: float) -> None:
    found = surfaces.every()
    wrong = {where: score for where, score in found.items() if score != pytest.approx(expected)}
    assert not wrong, f"expected {expected:g} everywhere; these disagree: {wrong}"


def test_every_surface_agrees_after_the_worker_grades(late_graded: Surfaces) -> None:
    assert_agree(late_graded, 15 * 0.8)


def test_every_surface_agrees_after_staff_change_the_late_penalty(
        late_graded: Surfaces) -> None:
    change_settings(late_graded, late_penalty="0.25")
    assert_agree(late_graded, 15 * 0.5)
    adjust(late_graded, "1")
    assert_agree(late_graded, 15 * 0.5 + 1)
    change_settings(late_graded, late_penalty="0")
    assert_agree(late_graded, 15 + 1)
    change_settings(late_graded, late_penalty="0.6")
    assert_agree(late_graded, 0 + 1)  # the penalty stops at 100 %, the adjustment is added
