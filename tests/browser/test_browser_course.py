"""Issue 14 (students and TAs) and 12.10 in headless Chromium against the real
``dlgrade serve``, at desktop width and at 390 px (a phone):

A TA logs in (and lands on the staff dashboard, through a ``next`` that tries to leave
the site), creates a course with a time zone, imports a CSV roster (a new account gets
a password link), adds a built-in assignment, and looks at the course settings. The new
student sets a password from the link, reads the assignment page (description, handout
README, starter download, required files, tests, the day's count), has a handin that
lacks files refused with the list, hands in the full one and follows the grading live to
100 / 100, and makes an API token. The TA adjusts the
score, comments a line in the code view and opens the course gradebook, the similarity
report and the downloads; the student sees the adjustment and the comment. A copied
session cookie is dead after logout. On every page: the Content-Security-Policy is sent
and nothing breaks it, no page is wider than the screen, the title names the page, a
skip link leads to the content.

Screenshots of each step go to the test's tmp_path and ``$DLGRADE_SCREENSHOT_DIR``
(``course-desktop-NN-*.png``, ``course-phone-NN-*.png``).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import GRADING_TIMEOUT_MS, Server, Steps
from tests.conftest import MYTORCH_SOLUTION
from tests.services import tar_gz

pytestmark = pytest.mark.browser

WIDTHS = {"desktop": 1280, "phone": 390}
NEW_STUDENT = "ann.lee@uni.example"
PASSWORD = "a long new password"


# The innermost elements that stick out to the right of the screen (for the message).
WIDER = """width => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > width + 1)
  .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > width + 1))
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)"""


class Visit:
    """Screenshots plus the checks every page must pass."""

    def __init__(self, page: Any, steps: Steps, width: int, server: Server) -> None:
        self.page, self.steps, self.width, self.server = page, steps, width, server
        self.violations: list[str] = []
        page.on("console", lambda m: self._console(m.text))

    def _console(self, text: str) -> None:
        if "Content Security Policy" in text or "Refused to" in text:
            self.violations.append(text)

    def check(self, name: str) -> None:
        from playwright.sync_api import expect

        page = self.page
        page.wait_for_load_state("load")
        expect(page).to_have_title(re.compile(r"\S.* · dlgrade$"))
        assert page.locator("link[rel=icon]").count() == 1
        assert page.locator("a.skip[href='#main']").count() == 1
        wide = page.evaluate("document.documentElement.scrollWidth")
        culprits = page.evaluate(WIDER, self.width) if wide > self.width else []
        assert wide <= self.width, f"{name}: {wide} px wide at {self.width} px: {culprits}"
        assert not self.violations, self.violations
        self.steps.shot(name)


def log_in(page: Any, server: Server, email: str, password: str, next_path: str = "") -> None:
    page.goto(server.url + "login" + (f"?next={next_path}" if next_path else ""))
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")


def log_out(page: Any) -> None:
    page.get_by_role("button", name="Log out", exact=True).click()
    page.wait_for_url(re.compile(r"/login$"))


def partial_handin(tmp_path: Path) -> Path:
    tree = tmp_path / "partial"
    shutil.copytree(MYTORCH_SOLUTION, tree)
    (tree / "hw2" / "mc.py").unlink()
    path = tmp_path / "partial.tar.gz"
    path.write_bytes(tar_gz(tree))
    return path


@pytest.mark.parametrize("device", list(WIDTHS))
def test_ta_sets_up_a_course_and_a_student_hands_in(server: Server, browser: Any,
                                                    tmp_path: Path, device: str) -> None:
    from playwright.sync_api import expect

    width = WIDTHS[device]
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  accept_downloads=True)
    page = context.new_page()
    visit = Visit(page, Steps(page, tmp_path / "screenshots", f"course-{device}"), width, server)
    staff_email, staff_password = server.accounts["staff"]
    course = f"dl101-{device}"

    # 12.10: a next= that tries to leave the site ends on the staff dashboard
    log_in(page, server, staff_email, staff_password, "/%09/evil.example/")
    page.wait_for_url(server.url + "staff/")
    response = page.request.get(server.url + "staff/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    visit.check("staff-home")

    page.get_by_role("link", name="New course").click()
    page.get_by_label("Short name").fill(course)
    page.get_by_label("Title").fill(f"Deep learning ({device})")
    page.locator("select[name=timezone]").select_option("Europe/Paris")
    visit.check("new-course")
    page.get_by_role("button", name="Create the course").click()
    page.wait_for_url(re.compile(rf"/staff/courses/{course}/people$"))

    roster = tmp_path / "roster.csv"
    roster.write_text(f"email,name,role\n{NEW_STUDENT},Ann Lee,student\n"
                      f"{server.accounts['student'][0]},,student\nnot-an-email,,student\n")
    page.get_by_label("Roster file (.csv)").set_input_files(str(roster))
    page.get_by_role("button", name="Import the roster").click()
    expect(page.locator("#import-report")).to_contain_text("2 enrolled, 1 new accounts")
    expect(page.locator("#import-report")).to_contain_text("line 4")
    link = page.locator("#reset-links tr", has_text=NEW_STUDENT).locator("code").inner_text()
    assert "/password/reset/" in link
    expect(page.locator("#people")).to_contain_text(NEW_STUDENT)
    visit.check("roster-imported")

    page.goto(server.url + f"staff/assignments/new?course={course}")
    page.locator("#builtin").select_option("mytorch-cnn")
    expect(page.locator("select[name=course]")).to_have_value(course)
    visit.check("new-assignment")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".flash.info")).to_contain_text(f"Created mytorch-cnn in {course}")
    page.goto(server.url + f"staff/courses/{course}/settings")
    expect(page.locator("select[name=timezone]")).to_have_value("Europe/Paris")
    visit.check("course-settings")
    log_out(page)

    # the new student: a password from the link, then the assignment page
    page.goto(link)
    page.get_by_label("New password (at least 10 characters)").fill(PASSWORD)
    page.get_by_label("New password again").fill(PASSWORD)
    visit.check("set-password")
    page.get_by_role("button", name="Set the password").click()
    log_in(page, server, NEW_STUDENT, PASSWORD)
    page.wait_for_url(server.url)
    page.get_by_role("link", name=re.compile(r"^MyTorch CNN")).click()
    expect(page.locator("#description")).to_contain_text("Conv1D")
    expect(page.locator("#readme h1, #readme h2").first).to_be_visible()
    expect(page.locator("#starter")).to_have_attribute("href", re.compile(r"starter\.zip$"))
    expect(page.locator("#test-list")).to_contain_text("Conv1D forward")
    expect(page.locator("#today")).to_contain_text("0 (no daily limit)")
    expect(page.locator("#due")).to_contain_text("no deadline")
    assert page.locator("#required-files li").count() == 7
    with page.expect_download() as starter:
        page.locator("#starter").click()
    assert starter.value.suggested_filename == "mytorch-cnn-starter.zip"
    visit.check("assignment-page")

    page.get_by_label(re.compile("Your handin")).set_input_files(str(partial_handin(tmp_path)))
    page.get_by_role("button", name="Submit for grading").click()
    expect(page.locator("#upload-error")).to_contain_text("lacks 1 of the 7 required files")
    expect(page.locator("#missing")).to_contain_text("hw2/mc.py")
    expect(page.locator("#today")).to_contain_text("0 (no daily limit)")  # not counted
    visit.check("refused-missing-files")

    full = tmp_path / "handin.tar.gz"
    full.write_bytes(tar_gz(MYTORCH_SOLUTION))
    seen: list[dict[str, Any]] = []

    def polled(response: Any) -> None:
        if response.url.endswith("status.json") and response.ok:
            try:
                seen.append(response.json())
            except Exception:  # noqa: BLE001 - the page navigated away before it was read
                pass

    page.on("response", polled)
    page.get_by_label(re.compile("Your handin")).set_input_files(str(full))
    page.get_by_role("button", name="Submit for grading").click()
    page.wait_for_url(re.compile(r"/submissions/\d+$"))
    submission = page.url.rsplit("/", 1)[1]
    expect(page.locator("#status")).to_be_visible()
    visit.steps.shot("grading")
    expect(page.locator("#score")).to_have_text("100 / 100", timeout=GRADING_TIMEOUT_MS)
    assert any(s.get("progress", {}).get("test") for s in seen), seen  # live: test n of N
    expect(page.locator("table.tests")).to_contain_text("Conv1D forward")
    visit.check("results")
    page.remove_listener("response", polled)

    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Label").fill("laptop")
    page.get_by_role("button", name="Create a token").click()
    expect(page.locator("#new-token")).to_contain_text("dlg_")
    visit.check("settings-token")
    log_out(page)

    # the TA: adjust, comment a line, the course gradebook, similarity, downloads
    log_in(page, server, staff_email, staff_password)
    page.goto(server.url + f"staff/submissions/{submission}")
    page.get_by_label("Points (negative to take points)").fill("-1.5")
    page.get_by_label("Comment (the student reads it)").fill("Missing docstrings.")
    page.get_by_role("button", name="Add the adjustment").click()
    expect(page.locator("#adjustments")).to_contain_text("-1.5 points")
    expect(page.locator("p.total")).to_contain_text("98.5 / 100")
    visit.check("adjusted")
    page.get_by_role("link", name="Code view and comments").click()
    page.get_by_role("link", name="Comment on line 3 of mytorch/conv.py").click()
    page.get_by_label("Comment", exact=True).fill("Could this loop be vectorised?")
    page.get_by_role("button", name="Add the comment").click()
    expect(page.locator(".code-comment")).to_contain_text("Could this loop be vectorised?")
    visit.check("code-view")
    page.goto(server.url + f"staff/courses/{course}/gradebook")
    expect(page.locator("#course-gradebook")).to_contain_text(NEW_STUDENT)
    expect(page.locator("#course-gradebook")).to_contain_text("98.5")
    visit.check("course-gradebook")
    page.get_by_role("link", name=re.compile(r"^MyTorch CNN")).first.click()
    expect(page.locator("#chart-scores svg text.label")).to_have_count(10)  # every bin
    visit.check("dashboard")
    with page.expect_download() as bundle:
        page.locator("#zip-best").click()
    assert bundle.value.suggested_filename.endswith("-best-submissions.zip")
    page.locator("#similarity").click()
    expect(page.locator("#similar-pairs")).to_contain_text("the reference solution")
    visit.check("similarity")
    log_out(page)

    # the student sees the adjustment and the comment; a copied cookie dies at logout
    log_in(page, server, NEW_STUDENT, PASSWORD)
    page.goto(server.url + f"submissions/{submission}")
    expect(page.locator("#adjustments")).to_contain_text("Missing docstrings.")
    page.get_by_role("link", name=re.compile("Your code, with 1 comment")).click()
    expect(page.locator(".code-comment")).to_contain_text("vectorised")
    visit.check("student-code-view")
    cookies = context.cookies()
    log_out(page)
    replay = browser.new_context()
    replay.add_cookies(cookies)
    stolen = replay.new_page()
    stolen.goto(server.url + f"submissions/{submission}")
    assert stolen.url.startswith(server.url + "login"), stolen.url
    replay.close()
    context.close()
