"""The dlgrade command line, in-process and once through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from dlgrade.cli import main
from grader.spec import AssignmentSpec
from sandbox.process_backend import ProcessBackend

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = ROOT / "reference/assignments/mytorch-cnn"
SOLUTION = ASSIGNMENT / "solution"
CONSOLE_SCRIPT = Path(sys.executable).parent / "dlgrade"


def run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``main`` and capture at the file-descriptor level (children included)."""
    status = main(argv)
    out, err = capfd.readouterr()
    return status, out, err


def assert_one_sentence_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dlgrade: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def solution_archive(tmp_path: Path) -> Path:
    """The solution as a .tar.gz wrapped in a ``handin/`` folder, as students often send it."""
    archive = tmp_path / "handin.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(SOLUTION.rglob("*.py")):
            tar.add(path, arcname=f"handin/{path.relative_to(SOLUTION).as_posix()}")
    return archive


def check_json(path: Path, capfd: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    status, out, err = run(["check", "mytorch-cnn", str(path), "--json", *extra], capfd)
    assert status == 0, err
    document: dict[str, Any] = json.loads(out)  # the whole of stdout is the document
    return document


def test_assignments_lists_mytorch_with_its_points(capfd: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["assignments"], capfd)
    assert (status, err) == (0, "")
    line = next(line for line in out.splitlines() if line.startswith("mytorch-cnn "))
    assert line.split()[1:3] == ["100", "points"]
    assert "MyTorch CNN" in line


@pytest.mark.sandbox
def test_json_output_is_only_the_results_document(
    capfd: pytest.CaptureFixture[str], process_backend: ProcessBackend
) -> None:
    document = check_json(SOLUTION, capfd, "--seed", "1", "--sandbox", "process")
    assert document["score"] == 100
    assert [t["status"] for t in document["tests"]] == ["passed"] * 8
    assert set(document) == {
        "score", "execution_time", "output", "visibility", "stdout_visibility", "tests"
    }


@pytest.mark.sandbox
def test_table_names_every_test_and_the_total(
    capfd: pytest.CaptureFixture[str], process_backend: ProcessBackend, mytorch_spec: AssignmentSpec
) -> None:
    status, out, err = run(["check", "mytorch-cnn", str(SOLUTION), "--sandbox", "process"], capfd)
    assert status == 0, err
    for test in mytorch_spec.tests:
        assert test.name in out
    total = next(line for line in out.splitlines() if line.strip().startswith("total"))
    assert "100/100" in total
    assert "sandbox: process" in total
    assert "failed" not in out


@pytest.mark.sandbox
def test_a_wrapped_tar_gz_grades_like_the_folder(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], process_backend: ProcessBackend
) -> None:
    document = check_json(solution_archive(tmp_path), capfd, "--seed", "2", "--sandbox", "process")
    assert document["score"] == 100


def test_sandbox_none_grades_without_isolation(capfd: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["check", "mytorch-cnn", str(SOLUTION), "--sandbox", "none"], capfd)
    assert status == 0, err
    assert "sandbox: none" in out
    assert "100/100" in out


def test_corrupt_archive_is_one_sentence_and_exit_2(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "handin.tar.gz"
    archive.write_bytes(b"\x1f\x8b this is not really gzip" * 10)
    status, out, err = run(["check", "mytorch-cnn", str(archive), "--sandbox", "none"], capfd)
    assert (status, out) == (2, "")
    assert_one_sentence_error(err, "not a valid")


def test_missing_path_exits_2(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere.zip"
    status, out, err = run(["check", "mytorch-cnn", str(missing), "--sandbox", "none"], capfd)
    assert (status, out) == (2, "")
    assert_one_sentence_error(err, str(missing), "does not exist")


def test_unknown_assignment_exits_2_naming_the_builtins(
    capfd: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(["check", "no-such-hw", str(SOLUTION), "--sandbox", "none"], capfd)
    assert (status, out) == (2, "")
    assert_one_sentence_error(err, "'no-such-hw'", "mytorch-cnn")


def test_usage_errors_exit_2_through_argparse(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["check", "mytorch-cnn", str(SOLUTION), "--sandbox", "vm"])
    assert caught.value.code == 2
    assert "invalid choice" in capfd.readouterr().err


def test_handout_writes_the_starter_code(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "starter"
    status, out, err = run(["handout", "mytorch-cnn", "-o", str(target)], capfd)
    assert (status, err) == (0, "")
    assert (target / "mytorch/conv.py").is_file()
    assert (target / "hw2/hw2.py").is_file()
    assert not list(target.rglob("__pycache__"))
    assert str(target) in out


def test_handout_into_an_empty_existing_folder_works(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(["handout", "mytorch-cnn", "-o", str(tmp_path)], capfd)
    assert (status, err) == (0, "")
    assert (tmp_path / "mytorch/conv.py").is_file()


def test_handout_refuses_a_non_empty_folder(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.py").write_text("x = 1\n")
    status, out, err = run(["handout", "mytorch-cnn", "-o", str(tmp_path)], capfd)
    assert (status, out) == (2, "")
    assert_one_sentence_error(err, "is not empty")
    assert [p.name for p in tmp_path.iterdir()] == ["mine.py"]


def test_grading_the_handout_scores_zero_without_crashing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "starter"
    assert run(["handout", "mytorch-cnn", "-o", str(target)], capfd)[0] == 0
    document = check_json(target, capfd, "--seed", "3", "--sandbox", "none")
    assert document["score"] == 0
    assert len(document["tests"]) == 8
    assert all(t["status"] == "failed" and t["score"] == 0 for t in document["tests"])
    assert all(t["output"].strip() for t in document["tests"])
    by_name = {t["name"]: t["output"] for t in document["tests"]}
    assert "NotImplementedError" in by_name["Conv1D forward"]
    assert "returned None" in by_name["Multiple choice"]


@pytest.mark.sandbox
def test_console_script_prints_json(process_backend: ProcessBackend) -> None:
    assert CONSOLE_SCRIPT.is_file(), f"{CONSOLE_SCRIPT} is missing: pip install -e ."
    command = [str(CONSOLE_SCRIPT), "check", "mytorch-cnn", str(SOLUTION), "--json",
               "--seed", "1", "--sandbox", "process"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["score"] == 100


def test_console_script_error_exit_status(tmp_path: Path) -> None:
    command = [str(CONSOLE_SCRIPT), "check", "mytorch-cnn", str(tmp_path / "none"),
               "--sandbox", "none"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stdout == ""
    assert_one_sentence_error(done.stderr, "does not exist")
