"""Grading inside Gradescope's autograder container (``run_autograder`` calls this).

Gradescope puts the student's files in ``/autograder/submission``, facts about the
submission in ``/autograder/submission_metadata.json``, and reads the verdict from
``/autograder/results/results.json``. The root is ``$AUTOGRADER_ROOT`` (default
``/autograder``), so tests can simulate the layout in a temporary directory.

The handin is graded like an upload to dlgrade: a lone archive (the .tar a course's
``create_tarball.sh`` makes) is extracted safely, a folder of files is packed and then
extracted the same way. The sandbox is the process one when the container allows
namespaces, else none (Gradescope's container then isolates one submission);
``$DLGRADE_SANDBOX`` (process | none) overrides. Whatever goes wrong, a valid
results.json with a plain sentence is written; details go to stdout, which Gradescope
shows to instructors only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from grader.grade import grade_archive, grade_path, rejected
from grader.results import GradingResult
from grader.spec import AssignmentSpec, resolve_assignment
from sandbox.backend import Backend, LocalBackend

DEFAULT_ROOT = "/autograder"
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip", ".tar.bz2", ".tar.xz")
INTERNAL_ERROR = ("The autograder could not grade this submission because of a problem on "
                  "the course's side, not in your code; course staff can see the details. "
                  "Please tell them.")
NO_SANDBOX = ("The autograder could not start its sandbox, a problem on the grading "
              "machine and not in your code, so nothing was graded and the score of 0 says "
              "nothing about your work. Please resubmit; if this happens again, contact "
              "course staff.")
EMPTY = "the submission is empty; upload your files or the archive your course asks for"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.gradescope")
    parser.add_argument("assignment", help="the slug of the bundled assignment")
    args = parser.parse_args(argv)
    root = Path(os.environ.get("AUTOGRADER_ROOT", DEFAULT_ROOT))
    try:
        document = grade_submission(root, resolve_assignment(args.assignment), os.environ)
    except Exception:  # noqa: BLE001 - whatever fails, Gradescope must get a results.json
        traceback.print_exc(file=sys.stdout)
        document = failure_document(INTERNAL_ERROR)
    write_results(root, document)
    return 0


def grade_submission(
    root: Path, spec: AssignmentSpec, environ: dict[str, str] | os._Environ[str]
) -> dict[str, Any]:
    """Grade ``root/submission`` and return the results.json document."""
    backend = choose_sandbox(environ.get("DLGRADE_SANDBOX", "auto"))
    result = grade_handin(spec, root / "submission", backend)
    _log_for_staff(result)
    if result.infrastructure_error:
        # Per-test errors would blame the handin; Gradescope's own failures exit 0 too
        # (see main), so the student reads this sentence instead of a crash page.
        return failure_document(NO_SANDBOX)
    document = result.to_gradescope()
    late = lateness(read_metadata(root / "submission_metadata.json"))
    if late:
        document["output"] = "\n".join(part for part in (document["output"], late) if part)
    return document


def grade_handin(spec: AssignmentSpec, submission: Path, backend: Backend) -> GradingResult:
    files = sorted(p for p in submission.rglob("*") if p.is_file()) if submission.is_dir() else []
    if not files:
        return rejected(spec, EMPTY)
    if len(files) == 1 and files[0].name.lower().endswith(ARCHIVE_SUFFIXES):
        return grade_archive(spec, files[0], backend)
    return grade_path(spec, submission, backend)


def choose_sandbox(name: str) -> Backend:
    if name == "none":
        return LocalBackend()
    from sandbox.process_backend import ProcessBackend, unavailable_reason

    reason = unavailable_reason()
    if reason is None:
        return ProcessBackend()
    if name == "process":
        raise RuntimeError(f"DLGRADE_SANDBOX=process, but it cannot run here: {reason}")
    print(f"dlgrade: the process sandbox cannot run in this container ({reason}); grading "
          "without it (the container holds only this submission).")
    return LocalBackend()


def read_metadata(path: Path) -> dict[str, Any]:
    """Gradescope's submission_metadata.json; {} when missing or unreadable."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def lateness(metadata: dict[str, Any]) -> str:
    """A sentence when the submission came after the due date (Gradescope applies the
    course's late policy itself), else ""."""
    assignment = metadata.get("assignment")
    if not isinstance(assignment, dict):
        return ""
    created, due = _when(metadata.get("created_at")), _when(assignment.get("due_date"))
    if created is None or due is None or created <= due:
        return ""
    late_due = _when(assignment.get("late_due_date"))
    hours = (created - due).total_seconds() / 3600
    text = f"Submitted {hours:.1f} hours after the due date"
    if late_due is not None and created > late_due:
        return text + ", after the late due date as well."
    return text + "; the course's late policy applies."


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def failure_document(message: str) -> dict[str, Any]:
    return {"score": 0.0, "execution_time": 0.0, "output": message, "visibility": "visible",
            "stdout_visibility": "hidden", "tests": []}


def write_results(root: Path, document: dict[str, Any]) -> Path:
    folder = root / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    partial = folder / ".results.json.partial"
    partial.write_text(json.dumps(document, indent=2), encoding="utf-8")
    os.replace(partial, path)
    return path


def _log_for_staff(result: GradingResult) -> None:
    """Tracebacks and sandbox notes on stdout: Gradescope shows it to instructors only."""
    print(f"dlgrade: {result.assignment}: {result.score:g}/{result.max_score:g} "
          f"(sandbox {result.sandbox or 'none'}, grader {Path(__file__).resolve().parent})")
    if result.infrastructure_error:
        print(f"dlgrade: no sandbox could be started, nothing was graded: "
              f"{result.infrastructure_error}")
    for line in result.staff_log:
        print(f"dlgrade: {line}")
    for test in result.tests:
        if test.staff_detail:
            print(f"--- [{test.number}] {test.name} (staff only) ---\n{test.staff_detail}")


if __name__ == "__main__":
    sys.exit(main())
