"""Fixtures of the browser tests: the real ``dlgrade serve`` (a subprocess with a fresh
data dir) and headless Chromium driven by Playwright, plus the screenshot helper.

Without Chromium or Playwright the tests skip, except in CI, where they fail.
Screenshots go under the test's tmp_path and, when ``DLGRADE_SCREENSHOT_DIR`` is set,
are copied there too (CI keeps that folder as an artifact).
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

from tests.conftest import require

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
    """Screenshots, numbered in order, under ``folder`` (in the test's tmp_path); copied
    to ``$DLGRADE_SCREENSHOT_DIR/<prefix>-NN-name.png`` when that variable is set."""

    def __init__(self, page: Any, folder: Path, prefix: str = "") -> None:
        self.page, self.folder, self.count, self.prefix = page, folder, 0, prefix
        folder.mkdir(parents=True, exist_ok=True)
        keep = os.environ.get("DLGRADE_SCREENSHOT_DIR")
        self.keep = Path(keep) if keep else None

    def shot(self, name: str, selector: str | None = None) -> Path:
        """The whole page, or only the element matching ``selector``."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        if selector:
            self.page.locator(selector).screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=True)
        if self.keep is not None:
            self.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, self.keep / "-".join(filter(None, (self.prefix, path.name))))
        return path


def log_in(page: Any, server: Server, role: str) -> None:
    email, password = server.accounts[role]
    page.goto(server.url + "login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(re.escape(server.url) + r"(staff/)?$"))  # staff land there
