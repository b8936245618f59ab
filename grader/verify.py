"""Proving an assignment folder before students see it: its solution/ must earn full
marks and each known-bug variant in bugs/<name>/ (see ``grader.known_bugs``: edits and
files applied to the solution, with an ``expect.toml`` listing ``fails = [test names]``)
must lose points on those tests.

The built-in assignments are held to the same standard by their tests in tests/grader.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.grade import grade_path
from grader.known_bugs import BugError, KnownBug, build_handin, known_bugs
from grader.results import GradingResult
from grader.spec import AssignmentSpec
from sandbox.backend import Backend


def verify_assignment(
    spec: AssignmentSpec, backend: Backend, *, seed: int | None = None
) -> list[str]:
    """Every way the folder falls short, as sentences; empty when it behaves."""
    solution = spec.folder / "solution"
    if not solution.is_dir():
        return ["There is no solution/ folder to verify."]
    problems = _solution_problems(grade_path(spec, solution, backend, seed=seed))
    try:
        bugs = known_bugs(spec.folder)
    except BugError as exc:
        return [*problems, str(exc)]
    for bug in bugs:
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
    spec: AssignmentSpec, solution: Path, bug: KnownBug, backend: Backend, seed: int | None
) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="dlgrade-bug-") as scratch:
        try:
            handin = build_handin(solution, bug, Path(scratch) / "handin")
        except BugError as exc:
            return [str(exc)]
        result = grade_path(spec, handin, backend, seed=seed)
    scores = {test.name: test for test in result.tests}
    return [
        f"bugs/{bug.name} should fail {name!r}, but it scores full marks there."
        for name in bug.fails if name in scores and scores[name].score >= scores[name].max_score
    ]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "(no message)"
