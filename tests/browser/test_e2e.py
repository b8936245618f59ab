"""End to end: the real ``dlgrade serve`` (subprocess) driven by headless Chromium.

A student logs in, uploads the reference handin through the file input and watches the
results page reach 100 / 100; staff then find the submission on the dashboard. Every
step leaves a screenshot under the test's tmp_path. Without Chromium or Playwright the
test skips, except in CI, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MYTORCH_SOLUTION, require
from tests.services import tar_gz

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("DLGRADE_TEST_CHROMIUM") or shutil.which("chromium")
                or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 90
GRADING_TIMEOUT_MS = 120_000
ACCOUNT = re.compile(r"^\s+(staff|student):\s+(\S+)\s+password: (\S+)$", re.MULTILINE)


@dataclass
class Server:
    url: str
    accounts: dict[str, tuple[str, str]]  # role -> (email, password)


def dlgrade_command() -> list[str]:
    script = Path(sys.executable).parent / "dlgrade"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dlgrade.cli"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``dlgrade serve --port 0`` in a fresh data dir; its output goes to files (a full
    pipe would block the server) and is read back for the URL and the credentials."""
    out_path, err_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        process = subprocess.Popen(
            [*dlgrade_command(), "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
            stdout=out, stderr=err,
        )
    try:
        yield wait_for_banner(process, out_path, err_path)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_banner(process: subprocess.Popen[bytes], out: Path, err: Path) -> Server:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = out.read_text()
        if "Press Ctrl-C to stop." in text:
            url = re.search(r"serving on (http://\S+)", text)
            assert url, text
            accounts = {role: (email, pw) for role, email, pw in ACCOUNT.findall(text)}
            return Server(url.group(1), accounts)
        if process.poll() is not None:
            pytest.fail(f"dlgrade serve exited with {process.returncode}:\n{err.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"dlgrade serve did not start in {START_TIMEOUT_S} s:\n{err.read_text()}")


@pytest.fixture
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright (pip install playwright)")
    require(CHROMIUM.is_file(), f"Chromium ({CHROMIUM}; set DLGRADE_TEST_CHROMIUM)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Steps:
    """Screenshots, numbered in order, under the test's tmp_path."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page, self.folder, self.count = page, folder, 0
        folder.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}.png"),
                             full_page=True)


def log_in(page: Any, server: Server, role: str) -> None:
    email, password = server.accounts[role]
    page.goto(server.url + "login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(server.url)


def test_student_hands_in_and_staff_see_it(server: Server, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    handin = tmp_path / "handin.tar.gz"
    handin.write_bytes(tar_gz(MYTORCH_SOLUTION))
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    steps = Steps(page, tmp_path / "screenshots")

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
