"""What the tool refuses, each checked against the test LMS's real launches (a requests
session plays the browser): forged, tampered, replayed or cross-browser tokens, wrong
audiences, unknown deployments and issuers, roles without access, open redirects, and
mapping rules (a student never creates, an LMS course never takes over a course)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from store.lti_models import LtiScore, LtiUser
from store.models import Course, User
from store.users import create_user
from tests.lti.conftest import (
    Tool,
    add_assignment,
    grade,
    post_launch,
    resign,
    start_launch,
    user_by_email,
)
from tests.lti.lms import CLIENT_ID, TestLms, new_key


def teacher_launch(lms: TestLms, tool: Tool) -> requests.Session:
    browser = requests.Session()
    answer = post_launch(browser, start_launch(browser, lms, "teacher", "rl-1"))
    assert answer.status_code == 303, answer.text
    browser.get(tool.url + answer.headers["Location"])  # the entry link: signed in
    return browser


def test_a_valid_launch_signs_in_once(lms: TestLms, tool: Tool) -> None:
    browser = requests.Session()
    posted = start_launch(browser, lms, "teacher", "rl-1")
    answer = post_launch(browser, posted)
    assert answer.status_code == 303
    entry = answer.headers["Location"]
    landed = browser.get(tool.url + entry if entry.startswith("/") else entry,
                         allow_redirects=False)
    assert landed.status_code == 302 and "/lti/links/" in landed.headers["Location"]
    again = requests.get(tool.url + entry if entry.startswith("/") else entry)
    assert again.status_code == 410 and "already used" in again.text


def test_a_replayed_launch_is_refused(lms: TestLms, tool: Tool) -> None:
    browser = requests.Session()
    posted = start_launch(browser, lms, "teacher", "rl-1")
    assert post_launch(browser, posted).status_code == 303
    replay = post_launch(browser, posted)
    assert replay.status_code == 403 and "could not be verified" in replay.text


def test_a_token_posted_from_another_browser_is_refused(lms: TestLms, tool: Tool) -> None:
    posted = start_launch(requests.Session(), lms, "teacher", "rl-1")
    answer = post_launch(requests.Session(), posted)  # no state cookie, no browser cookie
    assert answer.status_code == 403


@pytest.mark.parametrize(("changes", "why"), [
    ({"aud": "someone-else", "azp": None}, "Registration not found"),
    ({"aud": [CLIENT_ID, "other-tool"], "azp": None}, "azp"),
    ({"azp": "other-tool"}, "aud"),
    ({"exp": int(time.time()) - 60}, "expired"),
    ({"exp": None}, "exp"),
    ({"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "deploy-9"}, "deploy-9"),
    ({"nonce": "not-the-nonce"}, "Nonce"),
])
def test_tampered_claims_are_refused(lms: TestLms, tool: Tool, changes: dict[str, object],
                                     why: str) -> None:
    browser = requests.Session()
    posted = start_launch(browser, lms, "teacher", "rl-1")
    posted.id_token = resign(lms, posted.id_token, **changes)
    answer = post_launch(browser, posted)
    assert answer.status_code == 403 and why in answer.text, answer.text
    with tool.db_factory() as db:
        assert db.scalars(select(LtiUser)).first() is None  # nothing was provisioned


def test_a_token_signed_by_another_key_is_refused(lms: TestLms, tool: Tool) -> None:
    browser = requests.Session()
    posted = start_launch(browser, lms, "teacher", "rl-1")
    attacker, _ = new_key()
    posted.id_token = resign(lms, posted.id_token, key=attacker)
    answer = post_launch(browser, posted)
    assert answer.status_code == 403 and "Signature verification failed" in answer.text


def test_an_unregistered_platform_cannot_even_start(lms: TestLms, tool: Tool) -> None:
    answer = requests.get(f"{tool.url}/lti/login", params={
        "iss": "https://evil.example", "login_hint": "x", "client_id": CLIENT_ID,
        "target_link_uri": tool.url + "/lti/launch"}, allow_redirects=False)
    assert answer.status_code == 400 and "not registered" in answer.text


def test_roles_of_a_forged_issuer_are_never_read(lms: TestLms, tool: Tool) -> None:
    browser = requests.Session()
    posted = start_launch(browser, lms, "alice", "rl-1")
    attacker, _ = new_key()
    posted.id_token = resign(lms, posted.id_token, key=attacker, iss="https://evil.example", **{
        "https://purl.imsglobal.org/spec/lti/claim/roles":
            ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]})
    assert post_launch(browser, posted).status_code == 403
    with tool.db_factory() as db:
        assert db.scalars(select(Course)).first() is None


def test_the_redirect_uri_is_always_the_tools_own(lms: TestLms, tool: Tool) -> None:
    answer = requests.get(f"{tool.url}/lti/login", params={
        "iss": lms.issuer, "login_hint": "alice", "client_id": CLIENT_ID,
        "lti_message_hint": "rl-1", "target_link_uri": "https://evil.example/steal"},
        allow_redirects=False)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["redirect_uri"] == [tool.url + "/lti/launch"]
    assert answer.headers["Location"].startswith(lms.url + "/auth?")


def test_an_observer_gets_no_access(lms: TestLms, tool: Tool) -> None:
    teacher_launch(lms, tool)
    browser = requests.Session()
    answer = post_launch(browser, start_launch(browser, lms, "olga", "rl-1"))
    assert answer.status_code == 403 and "gives no access" in answer.text


def test_a_student_cannot_set_up_a_course(lms: TestLms, tool: Tool) -> None:
    browser = requests.Session()
    answer = post_launch(browser, start_launch(browser, lms, "alice", "rl-1"))
    assert answer.status_code == 403 and "instructor needs to open this link" in answer.text
    with tool.db_factory() as db:
        assert db.scalars(select(Course)).first() is None


def test_an_lms_course_cannot_take_over_someone_elses_course(lms: TestLms, tool: Tool) -> None:
    with tool.db_factory() as db:
        db.add(Course(slug="secret", title="Not yours"))
        db.commit()
    lms.links["rl-1"].custom = {"dlgrade_course": "secret"}
    browser = requests.Session()
    answer = post_launch(browser, start_launch(browser, lms, "teacher", "rl-1"))
    assert answer.status_code == 403 and "not staff of the dlgrade course" in answer.text


def test_an_admin_account_is_never_linked_by_email(lms: TestLms, tool: Tool) -> None:
    with tool.db_factory() as db:
        create_user(db, "teacher@uni.example", "pw", role="admin")
        db.commit()
    browser = requests.Session()
    answer = post_launch(browser, start_launch(browser, lms, "teacher", "rl-1"))
    assert answer.status_code == 403 and "administrator" in answer.text


def test_failed_posts_are_retried_then_shown_to_staff(lms: TestLms, tool: Tool) -> None:
    with tool.db_factory() as db:
        create_user(db, "teacher@uni.example", "pw-teacher", role="staff")
        db.commit()
    teacher = teacher_launch(lms, tool)
    with tool.db_factory() as db:
        assignment = add_assignment(db, "dl101")
    lms.links["rl-1"].custom = {"dlgrade_assignment": "mytorch-cnn"}
    lms.links["rl-1"].lineitem = None
    student = requests.Session()
    assert post_launch(student, start_launch(student, lms, "alice", "rl-1")).status_code == 303
    # the link was made by the teacher's launch, unmapped: map it as staff would
    page = teacher.get(f"{tool.url}/lti/links/1")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    teacher.post(f"{tool.url}/lti/links/1", data={"assignment_id": assignment.id,
                                                   "csrf_token": token})
    with tool.db_factory() as db:
        alice = user_by_email(db, "alice@uni.example")
    grade(tool.db_factory, assignment.id, alice.id, [(3.0, 5.0, "visible")])
    lms.fail_scores = True
    passback = tool.passback()
    for _ in range(3):
        passback.run_pending()
    with tool.db_factory() as db:
        row = db.scalars(select(LtiScore).where(LtiScore.user_id == alice.id)).one()
        assert (row.status, row.attempts) == ("failed", 3)
        assert "HTTP 500" in (row.last_error or "")
    assert lms.scores == []
    shown = teacher.get(f"{tool.url}/staff/lti/")
    assert "Not posted for alice@uni.example after 3 attempts" in shown.text
    lms.fail_scores = False
    token = shown.text.split('name="csrf_token" value="')[1].split('"')[0]
    teacher.post(f"{tool.url}/staff/lti/contexts/1/retry", data={"csrf_token": token})
    passback.run_pending()
    assert [(s.user_id, s.score, s.maximum) for s in lms.scores] == [("u-alice", 3.0, 5.0)]


def test_only_admins_register_platforms(lms: TestLms, tool: Tool) -> None:
    teacher_launch(lms, tool)
    with tool.db_factory() as db:
        create_user(db, "root@example.org", "pw-root", role="admin")
        db.commit()
        assert db.scalars(select(User).where(User.email == "teacher@uni.example")).one()
    browser = requests.Session()
    browser.get(f"{tool.url}/login")
    page = browser.get(f"{tool.url}/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    browser.post(f"{tool.url}/login", data={"email": "root@example.org", "password": "pw-root",
                                            "csrf_token": token})
    page = browser.get(f"{tool.url}/staff/lti/")
    assert "Register a platform" in page.text and tool.url + "/lti/jwks" in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    form = {"csrf_token": token, "name": "Moodle", "issuer": "https://moodle.example",
            "client_id": "abc", "deployment_ids": "1, 2",
            "auth_login_url": "https://moodle.example/mod/lti/auth.php",
            "auth_token_url": "https://moodle.example/mod/lti/token.php",
            "key_set_url": "https://moodle.example/mod/lti/certs.php", "auth_audience": ""}
    assert browser.post(f"{tool.url}/staff/lti/platforms", data=form).status_code == 200
    assert "https://moodle.example" in browser.get(f"{tool.url}/staff/lti/").text
    bad = browser.post(f"{tool.url}/staff/lti/platforms",
                       data={**form, "key_set_url": "ftp://x"})
    assert bad.status_code == 400 and "must be an https:// URL" in bad.text
