"""End to end: the real ``dlgrade serve`` (subprocess) driven by headless Chromium.

A student logs in, uploads the reference handin through the file input and watches the
results page reach 100 / 100; staff then find the submission on the dashboard. Every
step leaves a screenshot under the test's tmp_path. Without Chromium or Playwright the
test skips, except in CI, where it fails.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import GRADING_TIMEOUT_MS, Server, Steps, log_in
from tests.conftest import MYTORCH_SOLUTION
from tests.services import tar_gz

pytestmark = pytest.mark.browser


def test_student_hands_in_and_staff_see_it(server: Server, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    handin = tmp_path / "handin.tar.gz"
    handin.write_bytes(tar_gz(MYTORCH_SOLUTION))
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    steps = Steps(page, tmp_path / "screenshots", "e2e")

    page.goto(server.url)
    expect(page).to_have_url(re.compile(r"/login"))
    steps.shot("login")
    log_in(page, server, "student")
    expect(page.locator("h1")).to_have_text("Assignments")
    steps.shot("assignments")

    page.get_by_role("link", name=re.compile(r"^MyTorch CNN")).click()
    page.set_input_files("input[type=file][name=file]", str(handin))
    expect(page.locator("[data-chosen]")).to_contain_text("handin.tar.gz")
    steps.shot("upload")
    page.get_by_role("button", name="Submit for grading").click()
    page.wait_for_url(re.compile(r"/submissions/\d+$"))
    steps.shot("submitted")
    submission = page.url.rsplit("/", 1)[1]

    expect(page.locator("#score")).to_have_text("100 / 100", timeout=GRADING_TIMEOUT_MS)
    expect(page.locator("table.tests")).to_contain_text("Conv1D forward")
    steps.shot("results")

    page.get_by_role("button", name="Log out").click()
    log_in(page, server, "staff")
    page.get_by_role("link", name="Staff dashboard").click()
    page.get_by_role("link", name=re.compile(r"^MyTorch CNN")).click()
    row = page.locator("#submissions tr", has=page.get_by_role("link", name=submission, exact=True))
    expect(row).to_contain_text(server.accounts["student"][0])
    expect(row).to_contain_text("100 / 100")
    steps.shot("dashboard")

    row.get_by_role("link", name=submission, exact=True).click()
    expect(page.locator("h1")).to_contain_text(f"Submission {submission}")
    steps.shot("staff-submission")
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == steps.count == 7
