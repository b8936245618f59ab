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
ASSIGNMENT = ROOT / "assignments/mytorch-cnn"
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
    assert [t["status"] for t in document["tests"]] == ["passed"] * 10  # spring 2021
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


# ------------------------------------------------- dlgrade assignments add, export-gradescope


def course_data_dir(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> Path:
    """A migrated embedded data dir with the course dl101."""
    from store.db import make_engine, make_session_factory
    from store.models import Course

    data = tmp_path / "data"
    assert run(["migrate", "--data-dir", str(data)], capfd)[0] == 0
    engine = make_engine(f"sqlite:///{data / 'dlgrade.db'}")
    with make_session_factory(engine)() as db:
        db.add(Course(slug="dl101", title="DL"))
        db.commit()
    engine.dispose()
    return data


def stored_assignment(data: Path) -> Any:
    from sqlalchemy import select

    from store.db import make_engine, make_session_factory
    from store.models import Assignment

    engine = make_engine(f"sqlite:///{data / 'dlgrade.db'}")
    with make_session_factory(engine)() as db:
        found = db.scalars(select(Assignment)).all()
    engine.dispose()
    return found


def test_assignments_add_creates_then_updates(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from tests.tiny_assignment import write_tiny

    data = course_data_dir(tmp_path, capfd)
    folder = write_tiny(tmp_path / "tiny-hw")
    status, out, err = run(["assignments", "add", str(folder), "--course", "dl101",
                            "--data-dir", str(data), "--due", "2025-03-01T23:59",
                            "--late-due", "2025-03-03T23:59+00:00", "--late-penalty", "0.1",
                            "--daily-limit", "4", "--no-hidden-visible-after-due",
                            "--verify", "--sandbox", "none"], capfd)
    assert (status, err) == (0, "")
    assert "\nVerified tiny-hw: the solution scores 15/15" in out
    assert out.startswith("bug ")  # the per-bug table comes first
    assert "Added tiny-hw in dl101 (15 points, version " in out
    [row] = stored_assignment(data)
    assert (row.due_at.isoformat(), row.late_due_at.day, row.late_penalty_per_day,
            row.daily_limit, row.hidden_visible_after_due) == (
        "2025-03-01T23:59:00+00:00", 3, 0.1, 4, False)
    first = row.folder
    assert first.startswith(str(data / "assignments/dl101/tiny-hw/"))
    (folder / "spec.toml").write_text((folder / "spec.toml").read_text().replace(
        "points = 5", "points = 6"))
    status, out, err = run(["assignments", "add", str(folder), "--course", "dl101",
                            "--data-dir", str(data), "--title", "Tiny, again"], capfd)
    assert (status, err) == (0, "") and out.startswith("Updated tiny-hw in dl101 (16 points")
    [row] = stored_assignment(data)
    assert row.folder != first and Path(first).is_dir()  # the old version is kept
    assert (row.title, row.daily_limit, row.hidden_visible_after_due) == ("Tiny, again", 4, False)
    status, out, _ = run(["assignments"], capfd)  # still lists the built-ins only
    assert status == 0 and "mytorch-cnn" in out and "tiny-hw" not in out


@pytest.mark.parametrize("extra, message", [
    (["--due", "soon"], "dlgrade: --due: 'soon' is not a date and time in ISO 8601 form, such "
                        "as 2025-03-01T23:59 (UTC) or 2025-03-01T23:59+01:00."),
    (["--due", "2025-03-01T12:00", "--late-due", "2025-03-01T11:00"],
     "dlgrade: The late due date (2025-03-01 11:00 UTC) must be after the due date "
     "(2025-03-01 12:00 UTC)."),
    (["--release", "2025-03-02", "--due", "2025-03-01"],
     "dlgrade: The release date (2025-03-02 00:00 UTC) must be before the due date "
     "(2025-03-01 00:00 UTC)."),
    (["--course", "cs999"], "dlgrade: There is no course 'cs999'."),
])
def test_assignments_add_refuses_with_one_sentence(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    from tests.tiny_assignment import write_tiny

    data = course_data_dir(tmp_path, capfd)
    folder = write_tiny(tmp_path / "tiny-hw")
    argv = ["assignments", "add", str(folder), "--course", "dl101", "--data-dir", str(data)]
    status, out, err = run(argv + extra, capfd)
    assert (status, out, err.strip()) == (2, "", message)
    assert stored_assignment(data) == []


def test_assignments_add_verify_refuses_a_wrong_solution(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from tests.tiny_assignment import write_tiny

    data = course_data_dir(tmp_path, capfd)
    folder = write_tiny(tmp_path / "tiny-hw")
    (folder / "solution/answer.py").write_text("VALUE = 7\ndef double(x):\n    return 2 * x\n")
    status, out, err = run(["assignments", "add", str(folder), "--course", "dl101",
                            "--data-dir", str(data), "--verify", "--sandbox", "none"], capfd)
    assert (status, out) == (2, "")
    assert err.strip().splitlines() == [
        "dlgrade: --verify refused the assignment:",
        "solution/ scores 0/10 on 'The answer': VALUE is 7, not 42.",
    ]
    assert stored_assignment(data) == []


def test_assignments_add_lists_every_folder_problem(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from tests.tiny_assignment import write_tiny

    data = course_data_dir(tmp_path, capfd)
    folder = write_tiny(tmp_path / "tiny-hw")
    (folder / "checks.py").unlink()
    status, _, err = run(["assignments", "add", str(folder), "--course", "dl101",
                          "--data-dir", str(data)], capfd)
    assert status == 2
    assert err.strip().splitlines() == [
        "dlgrade: Test 'The answer' uses check 'tiny.answer', which is neither built in nor "
        "defined in checks.py.",
        "Test 'Twice the answer' uses check 'tiny.double', which is neither built in nor "
        "defined in checks.py.",
    ]


def test_export_gradescope_writes_the_zip(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "autograder.zip"
    status, out, err = run(["export-gradescope", "mytorch-cnn", "-o", str(target)], capfd)
    assert (status, err) == (0, "") and target.is_file()
    assert out.startswith(f"Wrote {target} for mytorch-cnn")
    status, out, err = run(["export-gradescope", "mytorch-cnn", "-o", str(tmp_path / "a.tgz")],
                           capfd)
    assert (status, out) == (2, "")
    assert_one_sentence_error(err, "should end in .zip")


def test_check_can_pin_a_handout_version_and_says_which_graded(
    capfd: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(["check", "mytorch-cnn", str(SOLUTION), "--sandbox", "none",
                            "--variant", "spring-2020", "--seed", "2"], capfd)
    assert status == 0, err
    assert out.startswith("Graded as the spring-2020 handout (Conv1D only) (this assignment "
                          "is set to that handout).")
    assert "Conv2D" not in out and "100/100" in out
    status, _, err = run(["check", "mytorch-cnn", str(SOLUTION), "--variant", "fall-2031"], capfd)
    assert status == 2
    assert_one_sentence_error(err, "no handout variant 'fall-2031'")


def test_test_flag_grades_only_the_named_tests(capfd: pytest.CaptureFixture[str]) -> None:
    document = check_json(SOLUTION, capfd, "--sandbox", "none", "--test", "Multiple choice",
                          "--test", "Conv1D backward: db")
    assert [t["name"] for t in document["tests"]] == ["Multiple choice", "Conv1D backward: db"]
    assert document["score"] == 10  # the solution follows the spring-2021 handout: db is 5


def test_an_unknown_test_name_exits_2_listing_the_tests(
        capfd: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["check", "mytorch-cnn", str(SOLUTION), "--test", "Conv2D"], capfd)
    assert status == 2
    assert_one_sentence_error(err, "no test called 'Conv2D'", "Conv1D forward; Conv1D backward")


def test_the_table_shows_control_characters_as_text() -> None:
    from dlgrade.cli import render_table
    from grader.outcomes import Outcome
    from grader.results import GradingResult, TestResult
    from sandbox.output import UNSAFE

    forged = TestResult("Conv1D forward", "1", 20, 0, Outcome.FAILED,
                        "\x1b[2J\x1b[H 1  Conv1D forward  20/20  passed\r")
    table = render_table(GradingResult("mytorch-cnn", [forged], 1.0))
    assert "\\x1b[2J" in table and not UNSAFE.search(table)


def test_check_spec_grades_with_another_spec_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from tests.tiny_assignment import SPEC, write_tiny

    folder = write_tiny(tmp_path / "tiny")
    (folder / "spec-course.toml").write_text(
        SPEC.replace("points = 10", "points = 7"), encoding="utf-8")
    status, out, _ = run(["check", str(folder), str(folder / "solution"), "--sandbox", "none",
                          "--spec", "spec-course.toml"], capfd)
    assert status == 0 and "12/12" in out.replace(" ", "")
    status, out, _ = run(["check", str(folder), str(folder / "solution"), "--sandbox", "none"],
                         capfd)
    assert status == 0 and "15/15" in out.replace(" ", "")
    status, _, err = run(["check", str(folder), str(folder / "solution"), "--sandbox", "none",
                          "--spec", "spec-nope.toml"], capfd)
    assert status == 2 and "spec-nope.toml" in err


def test_check_grades_in_the_docker_image_it_is_given(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """``--image``, else ``$DLGRADE_DOCKER_IMAGE``, else the local image: a check of the
    production image (``dlgrade-sandbox:cuda``) must not quietly grade in another one."""
    import dlgrade.cli
    from sandbox.select import DEFAULT_IMAGE, BackendUnavailable

    asked: list[tuple[str, str]] = []

    def choose(name: str, *, docker_image: str) -> Any:
        asked.append((name, docker_image))
        raise BackendUnavailable(f"no engine for {docker_image}")

    monkeypatch.setattr(dlgrade.cli, "choose_backend", choose)
    monkeypatch.delenv("DLGRADE_DOCKER_IMAGE", raising=False)
    command = ["check", "mytorch-cnn", str(SOLUTION), "--sandbox", "docker"]
    status, _, err = run([*command, "--image", "dlgrade-sandbox:cuda"], capfd)
    assert status != 0 and "no engine for dlgrade-sandbox:cuda" in err
    run(command, capfd)
    monkeypatch.setenv("DLGRADE_DOCKER_IMAGE", "dlgrade-sandbox:cpu")
    run(command, capfd)
    assert asked == [("docker", "dlgrade-sandbox:cuda"), ("docker", DEFAULT_IMAGE),
                     ("docker", "dlgrade-sandbox:cpu")]
