"""grader/known_bugs.py: known-bug variants as edits and files applied to the solution."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.known_bugs import BugError, Edit, KnownBug, build_handin, known_bugs
from grader.spec import builtin_assignments, resolve_assignment


def variant(tmp_path: Path, expect: str, files: dict[str, str] | None = None) -> KnownBug:
    folder = tmp_path / "bugs" / "off_by_one"
    folder.mkdir(parents=True)
    (folder / "expect.toml").write_text(expect)
    for name, text in (files or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return KnownBug.load(folder)


ANSWER = "def answer():\n    return {}\n\n\nVALUE = 1\nDOUBLE = VALUE * 2\n"


@pytest.fixture
def solution(tmp_path: Path) -> Path:
    folder = tmp_path / "solution"
    (folder / "pkg").mkdir(parents=True)
    (folder / "pkg/answer.py").write_text(ANSWER.format(42))
    (folder / "notes.txt").write_text("unchanged\n")
    return folder


EDIT = '''fails = ["The answer"]
hint = "off by one"
description = "returns 41"

[[edit]]
file = "pkg/answer.py"
replace = "    return 42\\n"
with = "    return 41\\n"
'''


def test_edits_and_laid_over_files_make_the_handin(tmp_path: Path, solution: Path) -> None:
    bug = variant(tmp_path, EDIT + '''
[[edit]]
file = "extra.py"
replace = "X = 1"
with = "X = 2"
''', {"extra.py": "X = 1\n"})
    assert (bug.fails, bug.hint, bug.description) == (["The answer"], "off by one", "returns 41")
    assert bug.touched() == ["extra.py", "pkg/answer.py"]
    handin = build_handin(solution, bug, tmp_path / "handin")
    assert (handin / "pkg/answer.py").read_text() == ANSWER.format(41)
    assert (handin / "extra.py").read_text() == "X = 2\n"
    assert (handin / "notes.txt").read_text() == "unchanged\n"
    assert not (handin / "expect.toml").exists()
    assert (solution / "pkg/answer.py").read_text().count("42") == 1  # solution untouched


@pytest.mark.parametrize("replace, message", [
    ("    return 43\\n", r"the text to replace \('return 43'…\) is not in pkg/answer.py; it "
                          r"must occur exactly once."),
    ("VALUE", r"the text to replace \('VALUE'…\) occurs 2 times in pkg/answer.py"),
])
def test_an_edit_that_does_not_apply_is_named(tmp_path: Path, solution: Path, replace: str,
                                              message: str) -> None:
    bug = variant(tmp_path, EDIT.replace('replace = "    return 42\\n"', f'replace = "{replace}"'))
    with pytest.raises(BugError, match=r"bugs/off_by_one/expect.toml, edit 1: " + message):
        build_handin(solution, bug, tmp_path / "handin")


def test_an_edit_of_a_file_nobody_has_is_named(tmp_path: Path, solution: Path) -> None:
    bug = variant(tmp_path, EDIT.replace('"pkg/answer.py"', '"pkg/other.py"'))
    with pytest.raises(BugError, match="pkg/other.py is neither in the solution nor laid over"):
        build_handin(solution, bug, tmp_path / "handin")


@pytest.mark.parametrize("expect, message", [
    ('hint = "x"\n', r"needs fails = \[...\], the names of the tests this bug fails"),
    ("fails = [\n", "is not valid TOML"),
    ('fails = ["A"]\nedit = "x"\n', r"edit must be an array of tables, written \[\[edit\]\]"),
    ('fails = ["A"]\n[[edit]]\nfile = "a.py"\n', r"edit 1 needs replace and with \(text\)"),
    ('fails = ["A"]\n[[edit]]\nfile = "../a.py"\nreplace = "a"\nwith = "b"\n',
     r"file '../a.py' must be a relative path inside the handin"),
    ('fails = ["A"]\n[[edit]]\nfile = "/etc/passwd"\nreplace = "a"\nwith = "b"\n',
     r"must be a relative path"),
    ('fails = ["A"]\n[[edit]]\nfile = "a.py"\nreplace = ""\nwith = "b"\n', r"replace is empty"),
])
def test_a_malformed_expect_toml_gets_one_sentence(tmp_path: Path, expect: str,
                                                   message: str) -> None:
    with pytest.raises(BugError, match=r"bugs/off_by_one/expect.toml.*" + message):
        variant(tmp_path, expect)


def test_a_folder_without_expect_toml_is_named(tmp_path: Path) -> None:
    (tmp_path / "lonely").mkdir()
    with pytest.raises(BugError, match=r"bugs/lonely/ has no expect.toml"):
        KnownBug.load(tmp_path / "lonely")


def test_edit_replaces_exactly_one_occurrence() -> None:
    edit = Edit("a.py", "b", "c")
    assert edit.apply("abc") == "acc"
    with pytest.raises(BugError, match="occurs 2 times"):
        edit.apply("abcb")


@pytest.mark.parametrize("slug", builtin_assignments())
def test_every_builtin_bug_applies_and_changes_the_solution(slug: str, tmp_path: Path) -> None:
    folder = resolve_assignment(slug).folder
    bugs = known_bugs(folder)
    assert bugs, slug
    for bug in bugs:
        handin = build_handin(folder / "solution", bug, tmp_path / bug.name)
        changed = [p for p in bug.touched()
                   if not (folder / "solution" / p).is_file()
                   or (folder / "solution" / p).read_bytes() != (handin / p).read_bytes()]
        assert changed == bug.touched(), (slug, bug.name)


def test_a_variant_pins_the_handout_version_a_bug_is_graded_as(tmp_path: Path) -> None:
    folder = tmp_path / "bugs" / "pinned"
    folder.mkdir(parents=True)
    (folder / "expect.toml").write_text('fails = ["a"]\nvariant = "spring-2020"\n')
    assert KnownBug.load(folder).variant == "spring-2020"
    (folder / "expect.toml").write_text('fails = ["a"]\nvariant = 2020\n')
    with pytest.raises(BugError, match="variant must be the name of a handout variant"):
        KnownBug.load(folder)
