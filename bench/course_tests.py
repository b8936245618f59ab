"""What running a course's own tests through the proxies costs, against running them
unsandboxed in one process (the course's own way, and Gradescope's).

    .venv/bin/python bench/course_tests.py [-n 5] [--backend process|none]

For rnn-gru-cells' solution it times each course-style file (the runner script and the
pytest file) both ways, ``n`` times, and prints medians and their ratio, twice:

- end to end: in one process, ``python FILE`` or ``python -m pytest FILE`` with the handin
  and the course's files in one folder; through the proxies, a fresh trusted runner
  process per run relayed to a sandbox that is already started (its start is printed
  apart: a grading starts one sandbox for all its tests);
- both with pytest's plug-in autoloading off, as the runner has it;
- the test file's run alone (interpreter start and imports of pytest and NumPy left out
  on both sides): ``runpy`` / ``pytest.main`` timed inside the process, against the
  runner's own timing of the same call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.course_tests.checks import student_modules
from grader.course_tests.relay import RunReport, RunRequest, run_course_tests
from sandbox.backend import Backend, LocalBackend, SandboxConfig
from sandbox.process_backend import ProcessBackend, unavailable_reason
from sandbox.session import Session, SessionLimits

ASSIGNMENT = Path(__file__).resolve().parent.parent / "assignments/rnn-gru-cells"
COURSE = ASSIGNMENT / "course_tests"
PYTHON_PATH = ("", "mytorch", "hw3")
FILES = {"script": "autograder/runner.py", "pytest": "autograder/test_cells.py"}
TIMED = """\
import json, sys, time, runpy
import numpy
mode, file = sys.argv[1], sys.argv[2]
if mode == "pytest":
    import pytest
started = time.perf_counter()
try:
    if mode == "script":
        sys.path.insert(0, "autograder")
        runpy.run_path(file, run_name="__main__")
    else:
        pytest.main([file, "-q", "-p", "no:cacheprovider", "-o", "addopts="])
except SystemExit:
    pass
print(json.dumps(time.perf_counter() - started), file=sys.stderr)
"""


def in_process(mode: str, folder: Path) -> tuple[float, float]:
    """(end to end, the run alone) in one unsandboxed process."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", TIMED, mode, FILES[mode]], cwd=folder,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    elapsed = time.perf_counter() - started
    if "FAIL" in done.stdout or "failed" in done.stdout:
        raise SystemExit(f"in-process {mode} run failed:\n{done.stdout[-2000:]}")
    return elapsed, float(json.loads(done.stderr.strip().splitlines()[-1]))


def proxied(mode: str, session: Session, modules: tuple[str, ...]) -> tuple[float, RunReport]:
    report = run_course_tests(session, RunRequest(mode, COURSE, FILES[mode], modules))
    if report.error or report.died or report.exit_code != 0 or report.run_seconds is None:
        raise SystemExit(f"proxied {mode} run failed: {report.error or report.stderr[-2000:]}")
    return report.seconds, report


def _line(label: str, local: list[float], remote: list[float]) -> str:
    ratio = statistics.median(remote) / statistics.median(local)
    return (f"  {label:22} in one process {statistics.median(local):6.2f} s   through "
            f"proxies {statistics.median(remote):6.2f} s   ratio {ratio:5.2f}x")


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
        config = SandboxConfig(submission_dir=ASSIGNMENT / "solution", python_path=PYTHON_PATH,
                               deny_imports=("torch",))
        session = backend.start(config, SessionLimits(call_timeout_s=60))
        start_s = time.perf_counter() - started
        try:
            modules = tuple(student_modules(session, PYTHON_PATH))
            print(f"sandbox: {backend.name}; its start {start_s:.2f} s (once per grading); "
                  f"medians of {args.n}")
            for mode in FILES:
                local = [in_process(mode, folder) for _ in range(args.n)]
                runs = [proxied(mode, session, modules) for _ in range(args.n)]
                print(f"{mode} {FILES[mode]} ({runs[-1][1].requests} requests a run)")
                print(_line("end to end", [a for a, _ in local], [s for s, _ in runs]))
                print(_line("the run alone", [b for _, b in local],
                            [float(r.run_seconds or 0.0) for _, r in runs]))
        finally:
            session.close()


if __name__ == "__main__":
    main()
