"""Uploaded assignment folders (store/assignment_folders.py): every refusal says exactly
what to fix, and a stored version never changes."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from grader.spec import BUILTIN_ROOT
from grader.verify import verify_assignment
from sandbox.backend import LocalBackend
from store.assignment_folders import (
    FolderError,
    FolderLimits,
    add_folder,
    folder_digest,
    validate,
)
from tests.conftest import ROOT
from tests.tiny_assignment import CHECKS, SPEC, write_tiny


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny(tmp_path / "src" / "tiny-hw")


def problems(folder: Path, **kwargs: object) -> list[str]:
    with pytest.raises(FolderError) as caught:
        validate(folder, **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def tar_of(folder: Path, target: Path, wrap: str | None = "tiny-hw") -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            tar.add(path, arcname=f"{wrap}/{relative}" if wrap else relative, recursive=False)
    return target


def test_a_good_folder_is_stored_read_only_under_its_hash(tiny: Path, tmp_path: Path) -> None:
    stored = add_folder(tiny, tmp_path / "data", "dl101")
    assert stored.path == tmp_path / "data/assignments/dl101/tiny-hw" / stored.sha256
    assert stored.sha256 == folder_digest(tiny)
    assert stored.spec.folder == stored.path and stored.spec.slug == "tiny-hw"
    assert (stored.path / "solution/answer.py").read_text() == (tiny / "solution/answer.py"
                                                                ).read_text()
    assert (stored.path / "spec.toml").stat().st_mode & 0o777 == 0o444
    assert stored.path.stat().st_mode & 0o777 == 0o555


def test_an_update_is_a_new_version_and_the_old_one_stays(tiny: Path, tmp_path: Path) -> None:
    first = add_folder(tiny, tmp_path / "data", "dl101")
    again = add_folder(tiny, tmp_path / "data", "dl101")
    assert again.path == first.path  # the same content is stored once
    (tiny / "solution/answer.py").write_text("VALUE = 42\ndef double(x):\n    return x * 2\n")
    second = add_folder(tiny, tmp_path / "data", "dl101")
    assert second.path != first.path
    assert "2 * x" in (first.path / "solution/answer.py").read_text()
    assert sorted(p.name for p in first.path.parent.iterdir()) == sorted(
        [first.sha256, second.sha256])  # no leftovers of the copy


@pytest.mark.parametrize("kind", ["tar.gz wrapped", "tar.gz flat", "zip"])
def test_archives_are_extracted_safely(tiny: Path, tmp_path: Path, kind: str) -> None:
    if kind == "zip":
        archive = tmp_path / "tiny.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            for path in sorted(tiny.rglob("*")):
                if path.is_file():
                    bundle.write(path, path.relative_to(tiny).as_posix())
    else:
        archive = tar_of(tiny, tmp_path / "tiny.tar.gz", "tiny-hw" if "wrapped" in kind else None)
    stored = add_folder(archive, tmp_path / "data", "dl101")
    assert stored.sha256 == folder_digest(tiny)


def test_a_hostile_archive_is_refused_with_the_extractors_sentence(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escape.py")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(FolderError) as caught:
        add_folder(archive, tmp_path / "data", "dl101")
    assert str(caught.value).startswith("evil.tar: ")
    assert ".." in str(caught.value)
    assert not (tmp_path / "data/assignments").exists()


def test_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FolderError) as caught:
        add_folder(tmp_path / "nowhere.tar.gz", tmp_path / "data", "dl101")
    assert str(caught.value) == f"{tmp_path / 'nowhere.tar.gz'} does not exist."


def test_a_course_slug_that_cannot_name_a_folder(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(FolderError) as caught:
        add_folder(tiny, tmp_path / "data", "../x")
    assert str(caught.value) == ("'../x' cannot name a course folder; use letters, digits, '.', "
                                 "'_' and '-'.")


def test_no_spec(tiny: Path) -> None:
    (tiny / "spec.toml").unlink()
    assert problems(tiny) == ["There is no spec.toml at the top of the assignment folder "
                              "(every assignment needs one)."]


def test_an_invalid_spec_names_the_field_not_the_temporary_path(tiny: Path) -> None:
    (tiny / "spec.toml").write_text(SPEC.replace("points = 10", "points = -1"))
    assert problems(tiny) == ["spec.toml:\n  tests.0.points: Input should be greater than or "
                              "equal to 0"]


def test_spec_toml_that_is_not_toml(tiny: Path) -> None:
    (tiny / "spec.toml").write_text("slug = \n")
    (message,) = problems(tiny)
    assert message.startswith("spec.toml: not valid TOML: ")


def test_slug_mismatch(tiny: Path) -> None:
    assert problems(tiny, expected_slug="other-hw") == [
        "spec.toml says slug = 'tiny-hw', but this is the assignment 'other-hw'; upload the "
        "folder of 'other-hw', or create a new assignment for this one."]


def test_slug_of_a_builtin(tiny: Path) -> None:
    (tiny / "spec.toml").write_text(SPEC.replace('"tiny-hw"', '"mytorch-cnn"'))
    assert problems(tiny) == ["'mytorch-cnn' is the slug of a built-in assignment; choose "
                              "another slug in spec.toml."]


def test_checks_py_that_fails_to_import(tiny: Path) -> None:
    (tiny / "checks.py").write_text("import os\n\nraise RuntimeError('no data here')\n")
    assert problems(tiny) == ["checks.py fails to import (line 3): RuntimeError: no data here"]


def test_checks_py_importing_a_missing_module(tiny: Path) -> None:
    (tiny / "checks.py").write_text("import os\nimport no_such_package_here\n")
    assert problems(tiny) == ["checks.py fails to import (line 2): it imports "
                              "no_such_package_here, which is not installed here."]


def test_checks_py_importing_a_worker_package_the_web_role_lacks(
        tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The web image has no PyTorch (issue 15): a checks.py with ``import torch`` at the top
    cannot be checked there, and the staff member is told how to write it instead."""
    monkeypatch.setitem(sys.modules, "torch", None)
    (tiny / "checks.py").write_text("import torch\n")
    (message,) = problems(tiny)
    assert message.startswith("checks.py fails to import (line 1): it imports torch, which "
                              "is not installed here. The web service installs only the web "
                              "role's packages")
    assert "import it inside the check functions" in message


def test_the_web_role_checks_every_built_in_assignment_without_pytorch() -> None:
    """The web role has no PyTorch, yet an upload loads the built-in checks and the folder's
    checks.py and validates every test's params: none of that may import torch (the check
    modules import it when a check runs, on a worker)."""
    script = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from grader.params import problems\n"
        "from grader.registry import load_builtin_checks, load_folder_checks\n"
        "from grader.spec import BUILTIN_ROOT, resolve_assignment\n"
        "load_builtin_checks()\n"
        "for folder in sorted(p.parent for p in BUILTIN_ROOT.glob('*/spec.toml')):\n"
        "    load_folder_checks(folder)\n"
        "    print(folder.name, problems(resolve_assignment(str(folder))))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.split("\n")
    assert len([line for line in lines if line.endswith(" []")]) == len(
        list(BUILTIN_ROOT.glob("*/spec.toml"))), done.stdout


def test_checks_py_with_a_syntax_error(tiny: Path) -> None:
    (tiny / "checks.py").write_text("def broken(:\n    pass\n")
    (message,) = problems(tiny)
    assert message.startswith("checks.py fails to import (line 1): SyntaxError: ")


def test_checks_py_taking_a_builtin_name(tiny: Path) -> None:
    (tiny / "checks.py").write_text(CHECKS.replace('"tiny.double"', '"torch.accuracy"'))
    assert problems(tiny) == ["checks.py fails to import (line 13): ValueError: check "
                              "'torch.accuracy' is registered twice"]


def test_unknown_checks(tiny: Path) -> None:
    (tiny / "checks.py").unlink()
    assert problems(tiny) == [
        "Test 'The answer' uses check 'tiny.answer', which is neither built in nor defined "
        "in checks.py.",
        "Test 'Twice the answer' uses check 'tiny.double', which is neither built in nor "
        "defined in checks.py.",
    ]


def test_no_solution(tiny: Path) -> None:
    for path in (tiny / "solution").iterdir():
        path.unlink()
    (tiny / "solution").rmdir()
    assert problems(tiny) == ["There is no solution/ folder; every assignment needs its "
                              "reference solution (--verify grades it, and staff compare "
                              "handins with it)."]


def test_solution_and_handout_need_the_required_files(tiny: Path) -> None:
    (tiny / "solution/answer.py").unlink()
    (tiny / "handout/answer.py").rename(tiny / "handout/answers.py")
    assert problems(tiny) == [
        "solution/ lacks answer.py, which spec.toml lists in [submission] required_files.",
        "handout/ lacks answer.py, which spec.toml lists in [submission] required_files.",
    ]


def test_bug_overlays_must_say_what_they_fail(tiny: Path) -> None:
    (tiny / "bugs/no_expect").mkdir()
    (tiny / "bugs/empty").mkdir()
    (tiny / "bugs/empty/expect.toml").write_text("hint = 'x'\n")
    (tiny / "bugs/off_by_one/expect.toml").write_text('fails = ["The answer", "Third"]\n')
    assert problems(tiny) == [
        "bugs/empty/expect.toml needs fails = [...], the names of the tests this bug fails.",
        "bugs/no_expect/ has no expect.toml (it lists the tests the bug fails, as "
        "fails = [...]).",
        "bugs/off_by_one/expect.toml names 'Third', which is not a test in spec.toml.",
    ]


def test_a_bug_edit_must_apply_to_the_solution(tiny: Path) -> None:
    expect = tiny / "bugs/off_by_one/expect.toml"
    expect.write_text(expect.read_text() + '[[edit]]\nfile = "answer.py"\n'
                      'replace = "VALUE = 7"\nwith = "VALUE = 8"\n')
    assert problems(tiny) == [
        "bugs/off_by_one/expect.toml, edit 1: the text to replace ('VALUE = 7'…) is not in "
        "answer.py; it must occur exactly once."]


def test_a_bug_may_be_edits_alone(tiny: Path) -> None:
    (tiny / "bugs/off_by_one/answer.py").unlink()
    expect = tiny / "bugs/off_by_one/expect.toml"
    expect.write_text(expect.read_text() + '[[edit]]\nfile = "answer.py"\n'
                      'replace = "VALUE = 42"\nwith = "VALUE = 41"\n')
    assert verify_assignment(validate(tiny), LocalBackend()) == []


def test_links_are_refused(tiny: Path) -> None:
    (tiny / "public_data").mkdir()
    (tiny / "public_data/passwd").symlink_to("/etc/passwd")
    assert problems(tiny) == ["public_data/passwd is a link; an assignment folder holds "
                              "regular files only (copy the file in instead)."]


def test_size_limits(tiny: Path) -> None:
    assert problems(tiny, limits=FolderLimits(max_files=3)) == [
        "The assignment folder holds 6 files; the limit is 3."]
    total = sum(path.stat().st_size for path in tiny.rglob("*") if path.is_file())
    assert problems(tiny, limits=FolderLimits(max_bytes=100)) == [
        f"The assignment folder holds {total:,} bytes; the limit is 100."]


def test_verify_passes_a_good_folder(tiny: Path) -> None:
    assert verify_assignment(validate(tiny), LocalBackend()) == []


def test_verify_refuses_a_wrong_solution_and_a_bug_that_passes(tiny: Path) -> None:
    (tiny / "solution/answer.py").write_text("VALUE = 42\ndef double(x):\n    return 3 * x\n")
    (tiny / "bugs/off_by_one/answer.py").write_text("VALUE = 42\n")
    assert verify_assignment(validate(tiny), LocalBackend()) == [
        "solution/ scores 2.5/5 on 'Twice the answer': double(21) returned 63, not 42.",
        "bugs/off_by_one should fail 'The answer', but it scores full marks there.",
    ]


def test_tests_that_outlast_a_grading_are_refused(tiny: Path, tmp_path: Path) -> None:
    """The tiny assignment's two tests have the default 60 s each: 120 s in all."""
    with pytest.raises(FolderError) as refused:
        add_folder(tiny, tmp_path / "data", "dl101", limits=FolderLimits(grading_s=100))
    assert "The tests' timeouts (timeout_s) add up to 120 s, more than the 100 s a grading " \
        "may take on this service" in str(refused.value)
    assert add_folder(tiny, tmp_path / "data", "dl101",
                      limits=FolderLimits(grading_s=120)).spec.tests_timeout_s == 120
