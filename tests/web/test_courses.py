"""Courses and rosters on the web (web/courses.py, store/courses.py): create a course,
its settings, CSV roster import, roles per course, removal, reset links, and the
course-wide gradebook with per-test columns in the one CSV format."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from store import courses
from store.models import Enrollment
from store.users import authenticate, find_user
from tests.web.factories import AuthActions, Factory, World, csrf_token, gs_test

ROSTER = ("Email,Name,Role\n"
          "new.one@example.edu,New One,student\n"
          "ALICE@example.edu,,student\n"
          "ta@example.edu,Tee Ay,TA\n"
          "not-an-address,,student\n"
          "x@example.edu,,janitor\n")


def test_parse_roster_reports_bad_lines() -> None:
    lines, problems = courses.parse_roster(ROSTER)
    assert [(line.email, line.role) for line in lines] == [
        ("new.one@example.edu", "student"), ("alice@example.edu", "student"),
        ("ta@example.edu", "staff")]
    assert problems == ["line 5: not-an-address is not an e-mail address",
                        "line 6: the role 'janitor' is not student or staff"]
    with pytest.raises(courses.CourseError, match="'email' column"):
        courses.parse_roster("name,role\nx,student\n")


def test_import_never_lowers_a_role(db: Session, world: World) -> None:
    lines, _ = courses.parse_roster(f"email,role\n{world.staff.email},student\n")
    report = courses.import_roster(db, world.course, lines)
    assert report.unchanged == 1
    role = db.query(Enrollment.role).filter_by(user_id=world.staff.id).scalar()
    assert role == "staff"


def test_create_course_refuses_bad_input(db: Session, world: World) -> None:
    for slug, title, zone, message in (("Bad Slug", "t", "UTC", "not a course slug"),
                                       ("dl101", "t", "UTC", "already a course"),
                                       ("ok", " ", "UTC", "needs a title"),
                                       ("ok", "t", "Mars/Olympus", "not a time zone")):
        with pytest.raises(courses.CourseError, match=message):
            courses.create_course(db, slug, title, zone)


def form(client: FlaskClient, url: str) -> str:
    return csrf_token(client.get(url).get_data(as_text=True))


def test_create_a_course_and_import_its_roster(client: FlaskClient, auth: AuthActions,
                                               world: World, db: Session) -> None:
    auth.login(world.staff.email)
    token = form(client, "/staff/courses/new")
    response = client.post("/staff/courses/new", data={
        "slug": "ml202", "title": "Machine learning", "timezone": "Europe/Paris",
        "csrf_token": token})
    assert response.headers["Location"] == "/staff/courses/ml202/people"
    roster = {"roster": (io.BytesIO(ROSTER.encode()), "roster.csv"),
              "csrf_token": form(client, "/staff/courses/ml202/people")}
    page = client.post("/staff/courses/ml202/roster", data=roster,
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "3 enrolled, 2 new accounts" in page
    assert "line 5: not-an-address" in page
    assert page.count("/password/reset/") == 2  # a link for each new account, shown once
    new = find_user(db, "new.one@example.edu")
    assert new is not None and authenticate(db, new.email, "") is None
    people = client.get("/staff/courses/ml202/people").get_data(as_text=True)
    assert "ta@example.edu" in people and "/password/reset/" not in people
    # the TA (enrolled as staff by the CSV) reaches the course's staff pages
    ta_client = client.application.test_client()
    link = page.split("/password/reset/")[1].split("<")[0]
    reset = ta_client.get(f"/password/reset/{link}").get_data(as_text=True)
    assert "new.one@example.edu" in reset or "ta@example.edu" in reset


def test_course_settings_change_the_timezone_of_its_pages(client: FlaskClient,
                                                          auth: AuthActions,
                                                          world: World) -> None:
    auth.login(world.staff.email)
    url = "/staff/courses/dl101/settings"
    client.post(url, data={"title": "Deep learning", "timezone": "America/New_York",
                           "csrf_token": form(client, url)})
    page = client.get(f"/staff/assignments/{world.assignment.id}").get_data(as_text=True)
    assert " EST</time>" in page or " EDT</time>" in page
    bad = client.post(url, data={"title": "x", "timezone": "Nowhere/Else",
                                 "csrf_token": form(client, url)})
    assert bad.status_code == 400 and "not a time zone" in bad.get_data(as_text=True)


def test_roles_removal_and_reset_links(client: FlaskClient, auth: AuthActions, world: World,
                                       db: Session) -> None:
    auth.login(world.staff.email)
    people = "/staff/courses/dl101/people"
    client.post(f"{people}/{world.bob.id}/role", data={"role": "staff",
                                                       "csrf_token": form(client, people)})
    assert db.query(Enrollment.role).filter_by(user_id=world.bob.id).scalar() == "staff"
    refused = client.post(f"{people}/{world.bob.id}/reset", data={
        "csrf_token": form(client, people)})
    assert refused.status_code == 403  # a TA cannot take over another staff account
    link = client.post(f"{people}/{world.alice.id}/reset", data={
        "csrf_token": form(client, people)}).get_data(as_text=True)
    assert "/password/reset/" in link
    client.post(f"{people}/{world.alice.id}/remove", data={"csrf_token": form(client, people)})
    db.expire_all()
    assert db.query(Enrollment).filter_by(user_id=world.alice.id).count() == 0
    mine = client.post(f"{people}/{world.staff.id}/remove",
                       data={"csrf_token": form(client, people)}, follow_redirects=True)
    assert "cannot remove yourself" in mine.get_data(as_text=True)


def test_a_student_cannot_reach_the_course_pages(client: FlaskClient, auth: AuthActions,
                                                 world: World) -> None:
    auth.login(world.alice.email)
    for url in ("/staff/courses/dl101/people", "/staff/courses/dl101/gradebook",
                "/staff/courses/new"):
        assert client.get(url).status_code == 403, url


def test_course_gradebook_has_per_test_columns(client: FlaskClient, auth: AuthActions,
                                               make: Factory, world: World) -> None:
    make.graded(world.alice, world.assignment, [gs_test(1, "Multiple choice", 3, 5),
                                                gs_test(2, "Conv1D forward", 10, 10)])
    auth.login(world.staff.email)
    page = client.get("/staff/courses/dl101/gradebook").get_data(as_text=True)
    assert "Conv1D forward" in page and ">13<" in page
    body = client.get("/staff/courses/dl101/gradebook.csv").get_data(as_text=True)
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(body))}
    alice = rows["alice@example.edu"]
    assert (alice["mytorch-cnn"], alice["mytorch-cnn: Multiple choice"],
            alice["mytorch-cnn: Conv1D forward"]) == ("13", "3", "10")
    assert rows[world.bob.email]["mytorch-cnn"] == ""
    one = client.get(f"/staff/assignments/{world.assignment.id}/gradebook.csv")
    assert one.get_data(as_text=True).splitlines()[0] == body.splitlines()[0]  # one format


def test_a_built_in_assignment_from_the_web(client: FlaskClient, auth: AuthActions,
                                            world: World, db: Session) -> None:
    from store.models import Assignment

    auth.login(world.staff.email)
    token = form(client, "/staff/assignments/new?course=dl101")
    response = client.post("/staff/assignments/new", data={
        "course": "dl101", "builtin": "mlp-cifar10", "late_penalty": "0", "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    row = db.query(Assignment).filter_by(slug="mlp-cifar10").one()
    assert row.folder is None and row.course_id == world.course.id
    again = client.post("/staff/assignments/new", data={
        "course": "dl101", "builtin": "mlp-cifar10", "csrf_token": token})
    assert again.status_code == 400 and "already has" in again.get_data(as_text=True)
