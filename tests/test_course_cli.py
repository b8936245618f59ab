"""dlgrade courses add, assignments new and assignments verify: a new course's TA goes
from nothing to a verified, added assignment with the command line alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlgrade.cli import main
from tests.tiny_assignment import write_tiny


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
