"""mypy over the course folders' own Python files: ``assignments/<slug>/*.py`` (checks.py
and its helper modules, trusted code run on the grader's side), with pyproject.toml's
settings (strict), one folder at a time.

Each folder is a package of its own (its checks.py imports its helpers relatively), but
the folders' names have hyphens and several hold a ``checks.py``, so none can be one
package tree for ``mypy grader ...``: each is linked, for the run, as a package named
``course_<slug>`` in a scratch folder, and mypy checks that package's modules; its report
names the folder's real files. Subfolders (solution/, handout/, bugs/, course_tests/) are
student-shaped code and are not checked.

    .venv/bin/python scripts/mypy_courses.py [FOLDER ...]    (default: every assignments/*/)

Exit status: 0 when every folder is clean, 1 otherwise (scripts/test.sh runs it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A fixed place (git and docker ignore it), so that mypy's cache knows the modules again.
LINKS = ROOT / ".mypy_cache" / "course-packages"


def package_name(folder: Path) -> str:
    """``course_mytorch_cnn`` for ``assignments/mytorch-cnn``."""
    return "course_" + re.sub(r"\W", "_", folder.name)


def course_modules(folder: Path) -> list[str]:
    """The folder's own modules (its top-level ``*.py``), by name."""
    return sorted(path.stem for path in folder.glob("*.py"))


def check_folder(folder: Path) -> tuple[int, str]:
    """mypy's exit status and report for one folder, in terms of the folder's own paths."""
    folder = folder.resolve()
    package = package_name(folder)
    scratch = LINKS / package  # one search-path entry per folder: only its package in it
    link = scratch / package
    scratch.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(folder, target_is_directory=True)
    targets = [arg for module in course_modules(folder) for arg in ("-m", f"{package}.{module}")]
    command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "--no-error-summary", "--cache-dir", str(LINKS / "cache"), *targets]
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(scratch), str(ROOT)])}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    shown = os.path.relpath(folder, ROOT) + os.sep
    report = done.stdout + done.stderr
    for prefix in (f"{link}{os.sep}", f"{os.path.relpath(link, ROOT)}{os.sep}"):
        report = report.replace(prefix, shown)
    return done.returncode, report


def main(argv: Sequence[str] | None = None) -> int:
    given = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    folders = given or sorted(path.parent for path in (ROOT / "assignments").glob("*/spec.toml"))
    failed = []
    for folder in folders:
        if not course_modules(folder):
            continue
        status, report = check_folder(folder)
        if report.strip():
            print(report.rstrip())
        if status != 0:
            failed.append(folder.name)
    checked = sum(1 for folder in folders if course_modules(folder))
    if failed:
        print(f"mypy_courses: type errors in {', '.join(failed)} ({checked} folders checked)")
        return 1
    print(f"mypy_courses: no issues in {checked} course folders")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
