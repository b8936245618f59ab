"""What running a course's own tests through the proxies costs, against running them
unsandboxed in one process (the course's own way, and Gradescope's).

    .venv/bin/python bench/course_tests.py [-n 5] [--backend process|none]

For rnn-gru-cells' solution it times each course-style file (the runner script and the
pytest file) two ways, ``n`` times each, and prints medians and their ratio:

- in one process: the handin and the course's files in one folder, ``python FILE`` or
  ``python -m pytest FILE`` (interpreter start included);
- through the proxies: a fresh runner process per run (interpreter start included),
  relayed to a sandbox session that is already started (its start is printed apart,
  since a grading starts one sandbox for all its tests anyway).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.course_tests.checks import student_modules
from grader.course_tests.relay import RunReport, RunRequest, run_course_tests
from grader.import_path import apply_python_path
from sandbox.backend import Backend, LocalBackend, SandboxConfig
from sandbox.process_backend import ProcessBackend, unavailable_reason
from sandbox.session import Session, SessionLimits

ASSIGNMENT = Path(__file__).resolve().parent.parent / "reference/assignments/rnn-gru-cells"
COURSE = ASSIGNMENT / "course_tests"
PYTHON_PATH = ("", "mytorch", "hw3")
FILES = {"script": "autograder/runner.py", "pytest": "autograder/test_cells.py"}


def in_process(mode: str, folder: Path) -> float:
    command = ([sys.executable, FILES[mode]] if mode == "script" else
               [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                "addopts=", FILES[mode]])
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"in-process {mode} run failed:\n{done.stdout.decode()[-2000:]}")
    return elapsed


def proxied(mode: str, session: Session, modules: tuple[str, ...]) -> tuple[float, RunReport]:
    started = time.perf_counter()
    report = run_course_tests(session, RunRequest(mode, COURSE, FILES[mode], modules))
    elapsed = time.perf_counter() - started
    if report.error or report.died or report.exit_code != 0:
        raise SystemExit(f"proxied {mode} run failed: {report.error or report.stderr[-2000:]}")
    return elapsed, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--backend", choices=("process", "none"), default="process")
    args = parser.parse_args()
    if args.backend == "process" and unavailable_reason() is not None:
        raise SystemExit(f"the process sandbox is unavailable: {unavailable_reason()}")
    backend: Backend = ProcessBackend() if args.backend == "process" else LocalBackend()
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-") as scratch:
        folder = Path(scratch) / "together"
        shutil.copytree(ASSIGNMENT / "solution", folder)
        shutil.copytree(COURSE, folder, dirs_exist_ok=True)
        started = time.perf_counter()
        session = backend.start(SandboxConfig(submission_dir=ASSIGNMENT / "solution"),
                                SessionLimits(call_timeout_s=60))
        start_s = time.perf_counter() - started
        try:
            apply_python_path(session, PYTHON_PATH)
            modules = tuple(student_modules(session, PYTHON_PATH))
            print(f"sandbox: {backend.name}; its start: {start_s:.2f} s (once per grading)")
            for mode in FILES:
                local = [in_process(mode, folder) for _ in range(args.n)]
                runs = [proxied(mode, session, modules) for _ in range(args.n)]
                remote = [seconds for seconds, _ in runs]
                requests = runs[-1][1].requests
                ratio = statistics.median(remote) / statistics.median(local)
                print(f"{mode:7} {FILES[mode]:26} in one process {statistics.median(local):.2f} s"
                      f"  through proxies {statistics.median(remote):.2f} s  ({requests} "
                      f"requests)  ratio {ratio:.2f}x")
        finally:
            session.close()


if __name__ == "__main__":
    main()
