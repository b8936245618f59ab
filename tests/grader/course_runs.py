"""Running a course's test file two ways, for the equivalence tests: in-process (as the
course runs it on a student's machine: its files and the handin in one folder) and
through dlgrade's proxies (the handin in a sandbox, the test file on the trusted side)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from grader.course_tests.checks import student_modules
from grader.course_tests.relay import RunReport, RunRequest, run_course_tests
from sandbox.backend import Backend, SandboxConfig
from sandbox.session import SessionLimits

LINE = re.compile(r"^(?P<label>.+?):\s*(?P<word>PASS|FAIL)\s*$")


@dataclass(frozen=True)
class Outcomes:
    """pytest: node id -> passed/failed/error; script: label -> PASS/FAIL, exit status."""

    cases: dict[str, str]
    exit_code: int | None


def in_process(mode: str, course: Path, file: str, handin: Path, tmp: Path) -> Outcomes:
    """The course's way: one folder holding the course's files and the handin."""
    folder = tmp / "in-process"
    shutil.copytree(handin, folder)
    shutil.copytree(course, folder, dirs_exist_ok=True)
    if mode == "script":
        done = subprocess.run([sys.executable, file], cwd=folder, capture_output=True,
                              text=True, timeout=300, check=False)
        return Outcomes(script_lines(done.stdout), done.returncode)
    report = tmp / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", file, "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(folder), "-o", "addopts=", "-W", "default",
                           f"--junitxml={report}"], cwd=folder, capture_output=True, text=True,
                          timeout=300, check=False)
    return Outcomes(junit_cases(report, file), done.returncode)


def proxied(mode: str, course: Path, file: str, handin: Path, backend: Backend,
            python_path: tuple[str, ...] = ("",)) -> tuple[Outcomes, RunReport]:
    """dlgrade's way: the handin in ``backend``'s sandbox, the file on the trusted side."""
    config = SandboxConfig(submission_dir=handin, python_path=python_path)
    session = backend.start(config, SessionLimits(call_timeout_s=60))
    try:
        run = RunRequest(mode, course, file, tuple(student_modules(session, python_path)))
        report = run_course_tests(session, run)
    finally:
        session.close()
    if mode == "script":
        return Outcomes(script_lines(report.stdout), report.exit_code), report
    cases = {nodeid: case["outcome"] for nodeid, case in report.cases.items()}
    return Outcomes(cases, report.exit_code), report


def script_lines(stdout: str) -> dict[str, str]:
    found = {}
    for line in stdout.splitlines():
        match = LINE.match(line.strip())
        if match:
            found[match["label"]] = match["word"]
    return found


def junit_cases(report: Path, file: str) -> dict[str, str]:
    """pytest's node ids (file::name[param]) and outcomes from its JUnit XML."""
    cases = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{file}::{case.get('name')}"
        kinds = {child.tag for child in case}
        cases[name] = ("failed" if "failure" in kinds else "error" if "error" in kinds
                       else "skipped" if "skipped" in kinds else "passed")
    return cases
