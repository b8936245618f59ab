"""The trusted runner: one course test run in a process of its own.

``python -m grader.course_tests.runner REQUEST_FD REPLY_FD`` is started by
``grader.course_tests.relay`` with a scrubbed environment, in a private copy of the
course's test folder. It reads its configuration as the first frame, installs the
student-module finder and runs a pytest file or a runner script. Whatever the test file
does at module level, prints or ``sys.exit``s stays in this process; the outcome per test
is sent back as the last frame. Student code never runs here: every student name is a
proxy (``grader.course_tests.proxies``).
"""

from __future__ import annotations

import os
import runpy
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any

from grader.course_tests import finder, proxies, seeds

MAX_LONGREPR = 4000


class Collector:
    """A pytest plug-in that records each test's outcome (call phase, or the phase that
    failed first)."""

    def __init__(self) -> None:
        self.cases: dict[str, dict[str, str]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        failed = report.outcome == "failed"
        if report.when != "call" and not failed and report.outcome != "skipped":
            return
        if report.nodeid in self.cases and self.cases[report.nodeid]["outcome"] == "failed":
            return
        text = str(getattr(report, "longreprtext", "") or "")
        self.cases[report.nodeid] = {"outcome": report.outcome, "message": text[-MAX_LONGREPR:]}

    def pytest_collectreport(self, report: Any) -> None:
        if report.outcome == "failed":
            text = str(getattr(report, "longreprtext", "") or "")
            self.cases[f"{report.nodeid or '<collection>'}"] = {
                "outcome": "error", "message": text[-MAX_LONGREPR:]}


def run_pytest(file: str, args: Sequence[str], plugins: Sequence[str] = ()) -> dict[str, Any]:
    import pytest

    collector = Collector()
    named = [option for plugin in plugins for option in ("-p", plugin)]
    options = [file, "-q", "-p", "no:cacheprovider", "--rootdir", os.getcwd(),
               "--tb=short", "-o", "addopts=", "-W", "default", *named, *args]
    code = pytest.main(options, plugins=[collector])
    return {"cases": collector.cases, "exit_code": int(code)}


def run_script(file: str, args: Sequence[str]) -> dict[str, Any]:
    """Run a runner script as ``python FILE ARGS`` would: ``__main__``, its folder first on
    sys.path; its exit status is what ``sys.exit`` said (1 for an uncaught exception)."""
    sys.argv = [file, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(file)))
    code = 0
    try:
        runpy.run_path(file, run_name="__main__")
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except proxies.SandboxGone as gone:
        print(f"The student's sandbox stopped: {gone}", file=sys.stderr)
        code = 1
    except BaseException:  # noqa: BLE001 - an uncaught error ends the script, as in Python
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    return {"cases": {}, "exit_code": code}


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def load_tensors() -> proxies.TensorSupport:
    """Tensors across the boundary (imports torch: only once a tensor crosses)."""
    from grader.course_tests import tensors

    return tensors.SUPPORT


def main(argv: Sequence[str]) -> int:
    request_fd, reply_fd = int(argv[0]), int(argv[1])
    channel = proxies.Channel(request_fd, reply_fd)
    config = channel.receive()
    if not isinstance(config, dict):
        return 2
    proxies.install(channel, set(config["modules"]), tensors=load_tensors)
    finder.install(set(config["modules"]), set(config.get("forced", [])))
    seeds.install()
    file, args = str(config["file"]), [str(a) for a in config.get("args", [])]
    started = time.perf_counter()
    try:
        if config["mode"] == "pytest":
            report = run_pytest(file, args, [str(p) for p in config.get("plugins", [])])
        else:
            report = run_script(file, args)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    report["requests"] = channel.requests
    report["run_seconds"] = time.perf_counter() - started
    channel.send({"op": "done", "report": report})
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))
