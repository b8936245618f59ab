"""dlgrade courses add, assignments new and assignments verify: a new course's TA goes
from nothing to a verified, added assignment with the command line alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlgrade.cli import main
from tests.tiny_assignment import CHECKS, SPEC, write_tiny


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DLGRADE_DATABASE_URL", "DLGRADE_SECRET_KEY", "DLGRADE_BROKER_URL",
                 "DLGRADE_EMBEDDED", "DLGRADE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "data"
    assert main(["migrate", "--data-dir", str(folder)]) == 0
    return folder


def test_a_new_course_then_a_verified_assignment(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_tiny(tmp_path / "tiny")
    args = ["--data-dir", str(data_dir)]
    assert main(["assignments", "add", str(folder), "--course", "dl101", *args]) == 2
    assert "There is no course 'dl101'" in capsys.readouterr().err
    assert main(["courses", "add", "dl101", "--title", "Deep Learning", *args]) == 0
    assert "Added course dl101" in capsys.readouterr().out
    assert main(["courses", "add", "dl101", *args]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["assignments", "add", str(folder), "--course", "dl101", "--verify",
                 "--sandbox", "none", *args]) == 0
    out = capsys.readouterr().out
    assert "off_by_one" in out and "Added tiny-hw in dl101" in out


def test_verify_refuses_a_bug_that_loses_an_unlisted_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_tiny(tmp_path / "tiny")
    (folder / "bugs/off_by_one/answer.py").write_text(
        "VALUE = 41\n\n\ndef double(x):\n    return x + 1\n", encoding="utf-8")
    assert main(["assignments", "verify", str(folder), "--sandbox", "none"]) == 2
    captured = capsys.readouterr()
    assert "also loses points on 'Twice the answer'" in captured.err
    assert "off_by_one" in captured.out  # the per-bug table


def test_verify_requires_each_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_tiny(tmp_path / "tiny")
    expect = folder / "bugs/off_by_one/expect.toml"
    expect.write_text(expect.read_text().replace('hint = "41"', 'hint = "forty-one"'))
    assert main(["assignments", "verify", str(folder), "--sandbox", "none"]) == 2
    assert "the hint 'forty-one' is not in the message" in capsys.readouterr().err
    assert main(["assignments", "verify", str(folder), "--sandbox", "none", "--no-hints"]) == 0


def test_assignments_new_writes_a_folder_that_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handout = tmp_path / "handout"
    (handout / "mytorch").mkdir(parents=True)
    (handout / "mytorch/linear.py").write_text("class Linear:\n    pass\n", encoding="utf-8")
    assert main(["assignments", "new", "hw1", "--from", str(handout), "-o",
                 str(tmp_path / "hw1")]) == 0
    assert "Wrote" in capsys.readouterr().out
    assert (tmp_path / "hw1/spec.toml").is_file()
    assert main(["assignments", "new", "hw1", "--from", str(handout), "-o",
                 str(tmp_path / "hw1")]) == 2


def test_courses_add_on_a_new_data_dir_prepares_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first command a new course runs: no `dlgrade migrate` before it."""
    for name in ("DLGRADE_DATABASE_URL", "DLGRADE_SECRET_KEY", "DLGRADE_BROKER_URL",
                 "DLGRADE_EMBEDDED", "DLGRADE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    args = ["--data-dir", str(tmp_path / "new-data")]
    assert main(["courses", "add", "dl101", *args]) == 0
    assert "Added course dl101" in capsys.readouterr().out
    assert main(["assignments", "add", str(write_tiny(tmp_path / "tiny")), "--course", "dl101",
                 *args]) == 0
    assert "Added tiny-hw in dl101" in capsys.readouterr().out


def test_assignments_add_spec_stores_the_chosen_spec(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_tiny(tmp_path / "tiny")
    (folder / "spec-course.toml").write_text(
        SPEC.replace('title = "Tiny homework"', 'title = "Tiny, course runner"'),
        encoding="utf-8")
    args = ["--data-dir", str(data_dir)]
    assert main(["courses", "add", "dl101", *args]) == 0
    assert main(["assignments", "add", str(folder), "--course", "dl101", "--spec",
                 "spec-nope.toml", *args]) == 2
    assert "There is no spec-nope.toml" in capsys.readouterr().err
    assert main(["assignments", "add", str(folder), "--course", "dl101", "--spec",
                 "spec-course.toml", "--verify", "--sandbox", "none", *args]) == 0
    stored = Path(capsys.readouterr().out.strip().rsplit(": ", 1)[1])
    assert 'title = "Tiny, course runner"' in (stored / "spec.toml").read_text()


# A check that draws whether to look: it catches off_by_one on seed 1, misses it on seed 2.
UNLUCKY = CHECKS.replace(
    "    if value != 42:\n",
    "    if value != 42 and ctx.rng.integers(2) == 0:\n")


def test_verify_seed_and_repeat_find_the_draw_that_misses_a_bug(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert UNLUCKY != CHECKS
    folder = write_tiny(tmp_path / "tiny", checks=UNLUCKY)
    verify = ["assignments", "verify", str(folder), "--sandbox", "none"]
    assert main([*verify, "--seed", "1"]) == 0
    assert main([*verify, "--seed", "1", "--repeat", "3"]) == 2
    err = capsys.readouterr().err
    assert "seed 2: bugs/off_by_one should fail 'The answer'" in err
    assert "seed 1:" not in err
    folder = write_tiny(tmp_path / "sound")
    assert main(["assignments", "verify", str(folder), "--sandbox", "none", "--repeat",
                 "3"]) == 0
    assert "on 3 seeds." in capsys.readouterr().out
    assert main([*verify, "--repeat", "0"]) == 2


def test_verify_keeps_the_detail_of_a_message_ending_in_a_colon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = CHECKS.replace(
        '        raise CheckFailed(f"double(21) returned {got!r}, not 42.", 0.5 if got else 0.0)',
        '        raise CheckFailed(f"double(21) returned {got!r}, not 42.", 0.5 if got else 0.0)\n'
        '    raise CheckFailed("1 of 1 course tests failed:\\n  test_sgd_step: lr ignored")')
    assert checks != CHECKS
    folder = write_tiny(tmp_path / "tiny", checks=checks)
    assert main(["assignments", "verify", str(folder), "--sandbox", "none"]) == 2
    assert ("'Twice the answer': 1 of 1 course tests failed: test_sgd_step: lr ignored"
            in capsys.readouterr().err)


MISSPELT = '''
[[tests]]
name = "Course tests"
check = "course.pytest"
points = 1
params = { file = "test_a.py", selct = ["test_x"] }
'''
SENTENCE = ('tests.2 ("Course tests", check "course.pytest"): params.selct is not a parameter '
            "of this check (did you mean select?); it takes: args, file, folder, modules, "
            "partial, plugins, run_timeout_s, select")


def test_add_and_verify_name_a_misspelt_param(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_tiny(tmp_path / "tiny", spec=SPEC + MISSPELT)
    args = ["--data-dir", str(data_dir)]
    assert main(["courses", "add", "dl101", *args]) == 0
    capsys.readouterr()
    assert main(["assignments", "add", str(folder), "--course", "dl101", *args]) == 2
    assert capsys.readouterr().err == f"dlgrade: spec.toml: {SENTENCE}\n"
    assert main(["assignments", "verify", str(folder), "--sandbox", "none"]) == 2
    assert capsys.readouterr().err == f"dlgrade: {folder / 'spec.toml'}:\n  {SENTENCE}\n"
    assert main(["check", str(folder), str(folder / "solution"), "--sandbox", "none"]) == 2
    assert capsys.readouterr().err == f"dlgrade: {folder.resolve() / 'spec.toml'}:\n  {SENTENCE}\n"
