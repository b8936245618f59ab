"""Proving an assignment folder before students see it: its solution/ must earn full
marks and each known-bug overlay in bugs/<name>/ (files laid over the solution, with an
``expect.toml`` listing ``fails = [test names]``) must lose points on those tests.

The built-in assignments are held to the same standard by their tests in tests/grader.
"""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from pathlib import Path

from grader.grade import grade_path
from grader.results import GradingResult
from grader.spec import AssignmentSpec
from sandbox.backend import Backend

IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def verify_assignment(
    spec: AssignmentSpec, backend: Backend, *, seed: int | None = None
) -> list[str]:
    """Every way the folder falls short, as sentences; empty when it behaves."""
    solution = spec.folder / "solution"
    if not solution.is_dir():
        return ["There is no solution/ folder to verify."]
    problems = _solution_problems(grade_path(spec, solution, backend, seed=seed))
    bugs = spec.folder / "bugs"
    for bug in sorted(bugs.iterdir()) if bugs.is_dir() else []:
        if (bug / "expect.toml").is_file():
            problems += _bug_problems(spec, solution, bug, backend, seed)
    return problems


def _solution_problems(result: GradingResult) -> list[str]:
    if result.rejected is not None:
        return [f"solution/ could not be graded: {result.rejected}"]
    return [
        f"solution/ scores {test.score:g}/{test.max_score:g} on {test.name!r}: "
        f"{_first_line(test.output)}"
        for test in result.tests if test.score < test.max_score
    ]


def _bug_problems(
    spec: AssignmentSpec, solution: Path, bug: Path, backend: Backend, seed: int | None
) -> list[str]:
    fails = tomllib.loads((bug / "expect.toml").read_text(encoding="utf-8")).get("fails", [])
    with tempfile.TemporaryDirectory(prefix="dlgrade-bug-") as scratch:
        handin = Path(scratch) / "handin"
        shutil.copytree(solution, handin, ignore=IGNORED)
        for path in [handin, *handin.rglob("*")]:  # a stored folder is read-only
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.copytree(bug, handin, ignore=shutil.ignore_patterns("expect.toml",
                                                                    "__pycache__", "*.pyc"),
                        dirs_exist_ok=True)
        result = grade_path(spec, handin, backend, seed=seed)
    scores = {test.name: test for test in result.tests}
    return [
        f"bugs/{bug.name} should fail {name!r}, but it scores full marks there."
        for name in fails if name in scores and scores[name].score >= scores[name].max_score
    ]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no message)"
