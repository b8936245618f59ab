"""``dlgrade export-gradescope``, then Gradescope simulated: the zip is unpacked into
``<tmp>/autograder/source`` and ``run_autograder`` runs against a fake ``/autograder``
(``AUTOGRADER_ROOT``), with the test's Python standing in for the venv setup.sh makes.
The bundled grader is the one that runs (the runner logs where it came from)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from dlgrade.cli import main
from grader.gradescope import NO_SANDBOX, lateness
from grader.gradescope_export import ExportError, export_autograder
from grader.known_bugs import KnownBug
from grader.spec import load_spec, resolve_assignment
from sandbox.process_backend import unavailable_reason
from tests.conftest import require
from tests.tiny_assignment import write_tiny

ROOT = Path(__file__).resolve().parent.parent
MYTORCH = ROOT / "assignments/mytorch-cnn"
SCHEMA = json.loads((ROOT / "tests/grader/gradescope_results.schema.json").read_text())


def exported(tmp_path: Path, slug: str = "mytorch-cnn") -> Path:
    output = tmp_path / "autograder.zip"
    assert main(["export-gradescope", slug, "-o", str(output)]) == 0
    return output


def autograder_tree(tmp_path: Path, bundle: Path) -> Path:
    """/autograder as Gradescope lays it out after setup.sh."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    shutil.copy(root / "source/run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    return root


def run_autograder(
    root: Path, sandbox: str = "none", python: str = sys.executable
) -> tuple[dict[str, Any], str]:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "DLGRADE_PYTHON": python,
           "DLGRADE_SANDBOX": sandbox}
    done = subprocess.run(["bash", str(root / "run_autograder")], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads((root / "results/results.json").read_text())
    jsonschema.validate(document, SCHEMA)
    return document, done.stdout + done.stderr


def submit(root: Path, source: Path, bug: Path | None = None) -> None:
    shutil.copytree(source, root / "submission", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    if bug is not None:
        KnownBug.load(bug).apply(root / "submission")


def test_the_zip_has_gradescope_entry_points_and_no_solution(tmp_path: Path) -> None:
    with zipfile.ZipFile(exported(tmp_path)) as archive:
        names = set(archive.namelist())
        modes = {name: archive.getinfo(name).external_attr >> 16 for name in names}
        requirements = archive.read("requirements.txt").decode()
    assert {"setup.sh", "run_autograder", "grader/gradescope.py", "sandbox/agent.py",
            "reference/numpy_layers.py", "assignments/mytorch-cnn/spec.toml"} <= names
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assignments = {n.split("/")[1] for n in names if n.startswith("assignments/")}
    assert assignments == {"mytorch-cnn"}
    assert not [n for n in names if n.startswith("reference/assignments/")]
    assert not [n for n in names if "/solution/" in n or "/bugs/" in n or "/handout/" in n]
    assert not [n for n in names if n.endswith(".pyc") or n.startswith(("store/", "web/"))]
    assert "numpy==" in requirements and "pydantic==" in requirements and "+" not in requirements


def test_the_solution_gets_full_marks(tmp_path: Path) -> None:
    root = autograder_tree(tmp_path, exported(tmp_path))
    submit(root, MYTORCH / "solution")
    document, log = run_autograder(root)
    assert document["score"] == 100
    assert {t["status"] for t in document["tests"]} == {"passed"}
    assert f"grader {root / 'source' / 'grader'}" in log  # the bundled grader ran


def test_a_buggy_handin_fails_the_right_tests(tmp_path: Path) -> None:
    root = autograder_tree(tmp_path, exported(tmp_path))
    submit(root, MYTORCH / "solution", MYTORCH / "bugs/flipped_kernel")
    document, _ = run_autograder(root)
    failed = sorted(t["name"] for t in document["tests"] if t["status"] == "failed")
    expected = tomllib.loads((MYTORCH / "bugs/flipped_kernel/expect.toml").read_text())
    assert failed == sorted(expected["fails"])
    assert document["score"] < 100


def test_a_tarball_upload_is_graded_like_its_files(tmp_path: Path) -> None:
    root = autograder_tree(tmp_path, exported(tmp_path))
    with tarfile.open(root / "submission/handin.tar", "w") as tar:
        for path in sorted((MYTORCH / "solution").rglob("*.py")):
            tar.add(path, arcname=path.relative_to(MYTORCH / "solution").as_posix())
    document, _ = run_autograder(root)
    assert document["score"] == 100


@pytest.mark.parametrize("content, message", [
    (None, "Your handin was not graded: the submission is empty; upload your files or the "
           "archive your course asks for"),
    (b"\x1f\x8b garbage" * 50, "Your handin was not graded: This file is not a valid .tar, "
                               ".tar.gz or .zip archive."),
])
def test_empty_or_garbage_submissions_get_a_valid_result_with_a_message(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    root = autograder_tree(tmp_path, exported(tmp_path))
    if content is not None:
        (root / "submission/handin.tar.gz").write_bytes(content)
    document, _ = run_autograder(root)
    assert document["score"] == 0
    assert document["output"] == message
    assert len(document["tests"]) == 8


def test_an_internal_failure_still_writes_results(tmp_path: Path) -> None:
    root = autograder_tree(tmp_path, exported(tmp_path))
    (root / "source/assignments/mytorch-cnn/spec.toml").write_text("slug = 3\n")
    submit(root, MYTORCH / "solution")
    document, log = run_autograder(root)
    assert document["score"] == 0 and document["tests"] == []
    assert document["output"].startswith("The autograder could not grade this submission "
                                         "because of a problem on the course's side")
    assert "SpecError" in log  # the traceback, for instructors


def test_a_grader_that_cannot_start_still_writes_results(tmp_path: Path) -> None:
    root = autograder_tree(tmp_path, exported(tmp_path))
    submit(root, MYTORCH / "solution")
    document, _ = run_autograder(root, python=str(root / "venv/bin/python"))  # no setup.sh
    assert document["score"] == 0
    assert document["output"].startswith("The autograder could not start")


def test_late_submissions_are_told_so(tmp_path: Path) -> None:
    root = autograder_tree(tmp_path, exported(tmp_path))
    submit(root, MYTORCH / "solution")
    (root / "submission_metadata.json").write_text(json.dumps({
        "created_at": "2025-03-02T01:30:00.000000-08:00",
        "assignment": {"due_date": "2025-03-01T23:59:00.000000-08:00", "late_due_date": None,
                       "total_points": "100.0"},
        "users": [{"email": "s@example.org", "name": "S", "sid": "1"}],
        "previous_submissions": [],
    }))
    document, _ = run_autograder(root)
    assert document["score"] == 100
    assert document["output"] == (
        "Graded as the spring-2021 handout (Conv1D and Conv2D) (recognised because "
        "mytorch/conv.py defines Conv2D).\nSubmitted 1.5 hours after the due date; the course's "
        "late policy applies.")


@pytest.mark.parametrize("metadata, sentence", [
    ({}, ""),
    ({"created_at": "2025-03-01T10:00:00+00:00",
      "assignment": {"due_date": "2025-03-01T12:00:00+00:00"}}, ""),
    ({"created_at": "2025-03-04T12:00:00+00:00",
      "assignment": {"due_date": "2025-03-01T12:00:00+00:00",
                     "late_due_date": "2025-03-03T12:00:00+00:00"}},
     "Submitted 72.0 hours after the due date, after the late due date as well."),
    ({"created_at": "yesterday", "assignment": {"due_date": "2025-03-01T12:00:00+00:00"}}, ""),
])
def test_lateness_from_metadata(metadata: dict[str, Any], sentence: str) -> None:
    assert lateness(metadata) == sentence


def test_process_sandbox_in_the_container(tmp_path: Path) -> None:
    reason = unavailable_reason()
    require(reason is None, f"the process sandbox ({reason})")
    root = autograder_tree(tmp_path, exported(tmp_path))
    submit(root, MYTORCH / "solution")
    document, log = run_autograder(root, sandbox="process")
    assert document["score"] == 100
    assert "sandbox process" in log


def test_an_uploaded_folder_with_checks_and_leaderboard_exports(tmp_path: Path) -> None:
    spec = load_spec(write_tiny(tmp_path / "tiny-hw"))
    bundle = export_autograder(spec, tmp_path / "tiny.zip")
    root = autograder_tree(tmp_path, bundle)
    (root / "submission/answer.py").write_text("VALUE = 40\ndef double(x):\n    return 2 * x\n")
    document, _ = run_autograder(root)
    assert document["leaderboard"] == [{"name": "Answer", "value": 40.0, "order": "desc"}]
    assert [t["status"] for t in document["tests"]] == ["failed", "passed"]


def test_the_output_must_be_a_zip(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as caught:
        export_autograder(resolve_assignment("mytorch-cnn"), tmp_path / "autograder.tar")
    assert str(caught.value) == (f"{tmp_path / 'autograder.tar'} should end in .zip "
                                 "(Gradescope takes a zip file).")


BROKEN_PYTHON = '''#!/usr/bin/env bash
# Stands in for the venv's python: runs the bundled runner with a sandbox backend whose
# start always fails (an engine down, a full disk), as grader.grade meets it.
exec {python} -c '
import sys
import grader.gradescope as runner
from sandbox.session import SessionDied

class BrokenHost:
    name = "broken"
    def start(self, config, limits):
        raise SessionDied("start", "the sandbox could not start: engine unreachable")

runner.choose_sandbox = lambda name: BrokenHost()
sys.exit(runner.main(sys.argv[-1:]))
' "$@"
'''


def test_a_host_that_cannot_start_sandboxes_says_nothing_was_graded(tmp_path: Path) -> None:
    root = autograder_tree(tmp_path, exported(tmp_path))
    submit(root, MYTORCH / "solution")
    broken = tmp_path / "broken-python"
    broken.write_text(BROKEN_PYTHON.format(python=sys.executable), encoding="utf-8")
    broken.chmod(0o755)
    document, log = run_autograder(root, python=str(broken))  # exits 0, schema-valid
    assert document["score"] == 0 and document["tests"] == []
    assert document["output"] == NO_SANDBOX
    assert "could not start its sandbox" in document["output"]
    assert "nothing was graded" in document["output"] and "resubmit" in document["output"]
    assert "engine unreachable" in log  # the reason, for instructors only
    assert f"grader {root / 'source' / 'grader'}" in log  # the bundled runner ran
