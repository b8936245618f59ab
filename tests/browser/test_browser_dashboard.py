"""The staff dashboard in headless Chromium against the real ``dlgrade serve``: the
charts render with bars, regrade all sends the submissions back to the queue and the
worker grades them again, and the CSV gradebook downloads. Screenshots of each step go
to the test's tmp_path (and to ``$DLGRADE_SCREENSHOT_DIR`` when set)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from grader.known_bugs import KnownBug, build_handin
from tests.browser.conftest import GRADING_TIMEOUT_MS, Server, Steps, log_in
from tests.conftest import MYTORCH_SOLUTION
from tests.services import tar_gz

pytestmark = pytest.mark.browser

BUG = MYTORCH_SOLUTION.parent / "bugs" / "flipped_kernel"
NONZERO_BARS = "els => els.filter(e => parseFloat(e.getAttribute('height')) > 0).length"
NONZERO_WIDTHS = "els => els.filter(e => parseFloat(e.getAttribute('width')) > 0).length"


def buggy_handin(tmp_path: Path) -> Path:
    """The reference solution with the flipped-kernel bug laid over it."""
    tree = build_handin(MYTORCH_SOLUTION, KnownBug.load(BUG), tmp_path / "buggy")
    path = tmp_path / "buggy.tar.gz"
    path.write_bytes(tar_gz(tree))
    return path


def hand_in(page: Any, archive: Path) -> str:
    """Upload from the assignment page and wait for the score; the submission id."""
    from playwright.sync_api import expect

    page.get_by_role("link", name=re.compile(r"^MyTorch CNN")).first.click()
    page.set_input_files("input[type=file][name=file]", str(archive))
    page.get_by_role("button", name="Submit for grading").click()
    page.wait_for_url(re.compile(r"/submissions/\d+$"))
    expect(page.locator("#score")).to_be_visible(timeout=GRADING_TIMEOUT_MS)
    submission: str = page.url.rsplit("/", 1)[1]
    page.goto(page.url.split("/submissions/")[0] + "/")
    return submission


def statuses(page: Any, ids: list[str]) -> list[str]:
    found = []
    for submission in ids:
        row = page.locator("#submissions tr", has=page.get_by_role("link", name=submission,
                                                                   exact=True))
        found.append(row.locator(".badge").inner_text())
    return found


def test_dashboard_charts_regrade_all_and_csv(server: Server, browser: Any,
                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect

    good = tmp_path / "good.tar.gz"
    good.write_bytes(tar_gz(MYTORCH_SOLUTION))
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    steps = Steps(page, tmp_path / "screenshots", "dashboard")
    log_in(page, server, "student")
    ids = [hand_in(page, good), hand_in(page, buggy_handin(tmp_path))]
    page.get_by_role("button", name="Log out").click()

    log_in(page, server, "staff")
    page.get_by_role("link", name="Staff dashboard").click()
    page.get_by_role("link", name=re.compile(r"^MyTorch CNN")).first.click()
    expect(page.locator("h1")).to_contain_text("MyTorch CNN")
    for chart in ("#chart-scores", "#chart-hours", "#chart-tests"):
        expect(page.locator(f"{chart} svg title").first).to_be_attached()
    assert page.locator("#chart-scores rect.bar").count() == 10
    assert page.locator("#chart-scores rect.bar").evaluate_all(NONZERO_BARS) == 1  # best: 100
    assert page.locator("#chart-hours rect.bar").evaluate_all(NONZERO_BARS) >= 1
    tests = page.locator("#chart-tests rect.bar")
    assert tests.count() >= 5 and tests.evaluate_all(NONZERO_WIDTHS) == tests.count()
    student = server.accounts["student"][0]
    expect(page.locator("#gradebook")).to_contain_text(student)
    steps.shot("dashboard")
    steps.shot("charts", ".charts")

    page.locator("#regrade-all input[name=confirm]").check()
    page.locator("#regrade-all").get_by_role("button", name="Regrade").click()
    expect(page.locator(".flash")).to_contain_text("Requeued 2 submissions")
    assert set(statuses(page, ids)) & {"queued", "running"}, statuses(page, ids)
    steps.shot("regrade-requeued")
    expect(page.locator('[data-live="assignment.queued"]')).to_have_text(
        "0", timeout=GRADING_TIMEOUT_MS)  # the live panel polls live.json
    expect(page.locator('[data-live="assignment.running"]')).to_have_text(
        "0", timeout=GRADING_TIMEOUT_MS)
    # The embedded worker beats: the panel names it, idle, and raises no alert.
    expect(page.locator('[data-live="workers.summary"]')).to_contain_text("1 worker alive")
    expect(page.locator("#workers tbody")).to_contain_text("embedded@")
    expect(page.locator("#workers-warning")).to_be_hidden()
    page.reload()
    assert statuses(page, ids) == ["done", "done"]
    steps.shot("regraded")

    with page.expect_download() as info:
        page.locator("#csv").click()
    download = info.value
    assert re.fullmatch(r"[\w.-]+-mytorch-cnn-gradebook\.csv", download.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    [mine] = [r for r in rows if r["email"] == student]
    slug = "mytorch-cnn"  # the one gradebook CSV format (web.sheets)
    assert (mine[slug], mine[f"{slug} max"], mine[f"{slug} attempts"]) == ("100", "100", "2")
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == steps.count == 4
