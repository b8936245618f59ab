"""Helpers for the torch check tests: a throwaway assignment folder and handin, graded
in-process (the inline backend: trusted test code only, and no torch import per session)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from grader.grade import grade_directory
from grader.results import TestResult
from grader.spec import AssignmentSpec, load_spec
from sandbox.backend import Backend
from sandbox.inline_backend import InlineBackend


def assignment(tmp_path: Path, tests: str, files: dict[str, str],
               folder_files: dict[str, str] | None = None) -> tuple[AssignmentSpec, Path]:
    """``tests`` is the [[tests]] TOML; ``files`` the handin; ``folder_files`` go next to
    spec.toml (trusted code such as a reference module)."""
    folder = tmp_path / "assignment"
    folder.mkdir()
    header = 'slug = "t"\ntitle = "t"\n[sandbox]\ncall_timeout_s = 60\nthreads = 2\n'
    (folder / "spec.toml").write_text(header + textwrap.dedent(tests))
    for name, text in (folder_files or {}).items():
        (folder / name).write_text(textwrap.dedent(text))
    handin = tmp_path / "handin"
    handin.mkdir()
    for name, text in files.items():
        (handin / name).write_text(textwrap.dedent(text))
    return load_spec(folder), handin


def grade(spec: AssignmentSpec, handin: Path, backend: Backend | None = None,
          seed: int = 0) -> dict[str, TestResult]:
    result = grade_directory(spec, handin, backend or InlineBackend(), seed=seed)
    return {test.name: test for test in result.tests}


def one(spec: AssignmentSpec, handin: Path, seed: int = 0) -> TestResult:
    (result,) = grade(spec, handin, seed=seed).values()
    return result
