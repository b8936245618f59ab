"""The agent's ImportBlocker: denied packages, and the files a policy lets import them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.agent import ImportBlocker


def run_as(root: Path, relative: str, blocker: ImportBlocker) -> None:
    """Ask ``blocker`` about torch from code whose file is ``root/relative``."""
    source = "blocker.find_spec('torch')\n"
    exec(compile(source, str(root / relative), "exec"), {"blocker": blocker})  # noqa: S102


def nested(root: Path, outer: str, inner: str, blocker: ImportBlocker) -> None:
    """``inner``'s code asks while ``outer``'s code is on the stack (outer imports inner)."""
    code = compile("run_as(root, inner, blocker)\n", str(root / outer), "exec")
    exec(code, {"run_as": run_as, "root": root, "inner": inner, "blocker": blocker})  # noqa: S102


def test_a_denied_package_is_refused_with_the_reason(tmp_path: Path) -> None:
    blocker = ImportBlocker(["torch"], "NumPy only", root=str(tmp_path))
    with pytest.raises(ImportError, match="NumPy only: import of torch is not allowed"):
        run_as(tmp_path, "hw2/hw2.py", blocker)
    assert blocker.find_spec("numpy") is None


def test_an_allowed_file_may_import_it_when_only_allowed_files_are_on_the_stack(
    tmp_path: Path,
) -> None:
    blocker = ImportBlocker(["torch"], "NumPy only", ["hw2/hw2.py"], str(tmp_path))
    run_as(tmp_path, "hw2/hw2.py", blocker)  # allowed: returns None
    with pytest.raises(ImportError):
        run_as(tmp_path, "mytorch/conv.py", blocker)
    with pytest.raises(ImportError):  # conv.py imports hw2, which imports torch
        nested(tmp_path, "mytorch/conv.py", "hw2/hw2.py", blocker)
    with pytest.raises(ImportError):  # no handin file at all: the grader's own request
        blocker.find_spec("torch")
